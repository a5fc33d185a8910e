// The authorization code flow with PKCE, state and nonce against provider.mjs, by plain
// HTTP (no browser): authorize, dev login form, consent, code, token exchange, and a
// check of the ID token (signature against the JWKS, iss, aud, exp, nonce).
//
//   node flow.mjs <issuer> [login=alice] [mode=""] [auth=basic|post]
//
// Prints each hop and the ID token's claims; exits 1 if a check fails (as expected for
// the modes that break the ID token).

import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";

const [issuer, login = "alice", mode = "", auth = "basic"] = process.argv.slice(2);
const clientId = auth === "post" ? "keysmith-post" : "keysmith";
const clientSecret = "keysmith-test-secret";
const redirectUri = process.env.REDIRECT_URI || "http://127.0.0.1:8080/oidc/callback";

const jar = new Map(); // one host, so a flat name -> value jar will do
const remember = (res) => {
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(";");
    const [name, value] = pair.split("=");
    if (/max-age=0|expires=thu, 01 jan 1970/i.test(attrs.join(";"))) jar.delete(name.trim());
    else jar.set(name.trim(), value);
    console.log(`  set-cookie ${c}`);
  }
};
const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
async function go(url, init = {}) {
  const res = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie: cookie() } });
  remember(res);
  console.log(`${init.method || "GET"} ${url} -> ${res.status} ${res.headers.get("location") || ""}`);
  return res;
}
const form = (o) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(o) });

if (mode) await fetch(`${issuer}/__test/mode`, form({ mode }));

const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const verifier = randomBytes(32).toString("base64url");
const challenge = createHash("sha256").update(verifier).digest("base64url");
const state = randomBytes(16).toString("base64url");
const nonce = randomBytes(16).toString("base64url");

const authorize = new URL(meta.authorization_endpoint);
authorize.search = new URLSearchParams({
  client_id: clientId,
  response_type: "code",
  scope: "openid email profile groups",
  redirect_uri: redirectUri,
  state,
  nonce,
  code_challenge: challenge,
  code_challenge_method: "S256",
});

// Follow redirects; answer each interaction page (login, then consent) with its form.
let res = await go(authorize.href);
let location = new URL(res.headers.get("location"), issuer).href;
for (let hop = 0; hop < 10 && !location.startsWith(redirectUri); hop++) {
  res = await go(location);
  if (res.status === 200) {
    const html = await res.text();
    const action = new URL(html.match(/action="([^"]+)"/)[1], issuer).href;
    const prompt = html.match(/name="prompt" value="(\w+)"/)[1];
    console.log(`  page: <h1>${html.match(/<h1>([^<]*)/)[1]}</h1>, prompt=${prompt}`);
    res = await go(action, form(prompt === "login" ? { prompt, login, password: "anything" } : { prompt }));
  }
  if (!res.headers.get("location")) throw new Error(`stuck at ${location}: ${res.status} ${await res.text()}`);
  location = new URL(res.headers.get("location"), issuer).href;
}
const callback = new URL(location);
console.log("callback query:", Object.fromEntries(callback.searchParams));
if (callback.searchParams.get("state") !== state) throw new Error("state mismatch");
if (callback.searchParams.get("iss") !== meta.issuer) throw new Error("iss mismatch (RFC 9207)");

const body = { grant_type: "authorization_code", code: callback.searchParams.get("code"), redirect_uri: redirectUri, code_verifier: verifier };
const headers = { "content-type": "application/x-www-form-urlencoded" };
if (auth === "post") Object.assign(body, { client_id: clientId, client_secret: clientSecret });
else headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`;
const tokenRes = await fetch(meta.token_endpoint, { method: "POST", headers, body: new URLSearchParams(body) });
const tokens = await tokenRes.json();
console.log(`POST ${meta.token_endpoint} -> ${tokenRes.status}`, { ...tokens, id_token: tokens.id_token?.slice(0, 40) + "…" });

const [h, p, s] = tokens.id_token.split(".");
const header = JSON.parse(Buffer.from(h, "base64url"));
const claims = JSON.parse(Buffer.from(p, "base64url"));
console.log("id_token header:", header);
console.log("id_token claims:", claims);

if (meta.userinfo_endpoint) {
  const info = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  console.log(`GET ${meta.userinfo_endpoint} -> ${info.status}`, await info.json());
}

const jwks = await (await fetch(meta.jwks_uri)).json();
const jwk = jwks.keys.find((k) => k.kid === header.kid);
const now = Math.floor(Date.now() / 1000);
const problems = [];
if (!verify("sha256", Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(s, "base64url"))) problems.push("bad signature");
if (claims.iss !== meta.issuer) problems.push("wrong issuer");
if (![claims.aud].flat().includes(clientId)) problems.push("wrong audience");
if (!(claims.exp > now)) problems.push("expired");
if (claims.nonce !== nonce) problems.push("wrong nonce");
if (claims.email_verified !== true) problems.push("email not verified");
console.log(problems.length ? `REFUSED: ${problems.join(", ")}` : "ID token OK");
process.exit(problems.length ? 1 : 0);
