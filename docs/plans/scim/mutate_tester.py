"""Run scim2-tester through a response-mutating client to see how deviations are judged.
usage: mutate_tester.py BASE TOKEN MODE   (MODE in patch200, strongetag, activedefault, orgroledefault, plainjson404, charset, pagesize1)"""
import sys, json, collections, re
from httpx2 import Client, Response
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server, Status
base, token, mode = sys.argv[1:4]
def resp(status, body, headers, req):
    h = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-encoding")}
    return Response(status, content=json.dumps(body).encode() if body is not None else b"", headers=h, request=req)
class Mut(SyncSCIMClient):
    def request(self, method, url, **kw):
        if mode == "strongetag" and "headers" in kw and "If-Match" in kw["headers"]:
            kw["headers"]["If-Match"] = "W/" + kw["headers"]["If-Match"]
        r = super().request(method, url, **kw)
        ct = r.headers.get("content-type", "")
        body = r.json() if r.content and "json" in ct else None
        if mode == "patch200" and method == "PATCH" and r.status_code == 204:
            g = super().request("GET", url)
            return resp(200, g.json(), g.headers, r.request)
        if mode == "strongetag" and body is not None:
            s = json.dumps(body).replace('W/\\"', '\\"')
            h = dict(r.headers); 
            if "etag" in h: h["etag"] = h["etag"].removeprefix("W/")
            return resp(r.status_code, json.loads(s), h, r.request)
        if mode in ("activedefault", "orgroledefault") and method == "GET" and "/Users/" in str(url) and r.status_code == 200 and "attributes" not in str(url):
            k, v = ("active", True) if mode == "activedefault" else ("organizationRole", "member")
            body.setdefault(k, v); return resp(200, body, r.headers, r.request)
        if mode == "plainjson404" and r.status_code == 404 and method == "GET":
            return Response(404, content=b'{"error":"not found"}', headers={"content-type": "application/json"}, request=r.request)
        if mode == "charset" and body is not None:
            h = dict(r.headers); h["content-type"] = "application/scim+json; charset=utf-8"
            return resp(r.status_code, body, h, r.request)
        if mode == "pagesize1" and body is not None and body.get("Resources") and len(body["Resources"]) > 1 and ("/Users" in str(url) or "/Groups" in str(url) or ".search" in str(url)):
            body["Resources"] = body["Resources"][-1:] if False else body["Resources"]
            body["Resources"] = sorted(body["Resources"], key=lambda x: x.get("meta",{}).get("created",""))[:1]; body["itemsPerPage"] = 1
            return resp(r.status_code, body, r.headers, r.request)
        if mode == "search501" and method == "POST" and str(url).endswith("/.search"):
            return resp(501, {"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"501","detail":"no root search"}, {"content-type":"application/scim+json"}, r.request)
        if mode == "create200" and method == "POST" and r.status_code == 201:
            return resp(200, body, r.headers, r.request)
        if mode == "ignoreattrs" and method == "GET" and kw.get("params"):
            g = super().request("GET", url)
            return resp(g.status_code, g.json(), g.headers, r.request)
        if mode == "noetagheader" and "etag" in r.headers:
            h = {k: v for k, v in r.headers.items() if k.lower() != "etag"}
            return resp(r.status_code, body, h, r.request)
        if mode == "405as404" and r.status_code == 405:
            return resp(404, {"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404"}, {"content-type":"application/scim+json"}, r.request)
        return r
scim = Mut(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}))
res = check_server(scim)
for r in res:
    if r.status != Status.SUCCESS: print(r.status.name, r.resource_type, r.title, (r.reason or "")[:300].replace("\n", " | "))
print(mode, "TOTAL", len(res), dict(collections.Counter(r.status.name for r in res)))
