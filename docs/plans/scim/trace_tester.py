"""Run scim2-tester and log every HTTP exchange to a file (method, url, req body, status, resp headers, body)."""
import sys, json, collections
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server
base, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
log = open(out, "w")
def on_resp(resp):
    resp.read()
    req = resp.request
    log.write(f"\n>>> {req.method} {req.url}\n")
    for h in ("if-match", "if-none-match", "content-type", "accept"):
        if h in req.headers: log.write(f"    {h}: {req.headers[h]}\n")
    if req.content: log.write("    " + req.content.decode()[:1500] + "\n")
    log.write(f"<<< {resp.status_code} " + " ".join(f"{k}={v}" for k, v in resp.headers.items() if k.lower() in ("content-type","location","etag")) + "\n")
    log.write("    " + resp.text[:1500] + "\n")
http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, event_hooks={"response": [on_resp]})
res = check_server(SyncSCIMClient(http))
print(collections.Counter(r.status.name for r in res), len(res))
