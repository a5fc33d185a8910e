// A real OpenID Provider (panva's oidc-provider) on loopback, for Keysmith's SSO tests.
//
// Import it (`startProvider({...})` returns { issuer, setMode, close, ... }) or run it:
//   REDIRECT_URI=http://127.0.0.1:8080/oidc/callback node provider.mjs
// which prints one JSON line {"issuer": "...", ...} once it listens, and serves until
// SIGTERM/SIGINT (or, with OIDC_STDIN_LIFELINE=1, until its stdin closes).
//
// Accounts (the dev login form takes any password; the login is the account ID):
//   alice  alice@example.com  verified      groups ["ml-admins"]
//   bob    bob@example.com    verified      groups ["nlp"]
//   eve    eve@example.com    NOT verified  groups []
//   any other login: <login>@example.com, verified, groups [] (e.g. for just-in-time creation)
//
// Negative cases: setMode(mode) (or POST /__test/mode with body `mode=<mode>`) alters the
// next token response (one only). The ID token is re-signed with the provider's own key (so only
// the named check can fail), except "tampered", which flips a payload character and keeps
// the old signature. Modes: "" (none), "nonce", "audience", "expired", "issuer",
// "tampered", "unverified" (email_verified=false on any account), "no-nonce", and "replay"
// (the previous flow's genuine ID token, unmodified: its nonce is another login's).

import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";

export const ACCOUNTS = {
  alice: { email: "alice@example.com", email_verified: true, name: "Alice Admin", groups: ["ml-admins"] },
  bob: { email: "bob@example.com", email_verified: true, name: "Bob Builder", groups: ["nlp"] },
  eve: { email: "eve@example.com", email_verified: false, name: "Eve Unverified", groups: [] },
};

const MODES = ["", "nonce", "no-nonce", "replay", "audience", "expired", "issuer", "tampered", "unverified"];
const b64u = (x) => Buffer.from(x).toString("base64url");

function resign(jwt, privateKey, edit) {
  const [h, p] = jwt.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  const payload = edit(JSON.parse(Buffer.from(p, "base64url")));
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}

function tamper(jwt) {
  // Change one claim's value without re-signing: the signature no longer matches.
  const [h, p, s] = jwt.split(".");
  const payload = JSON.parse(Buffer.from(p, "base64url"));
  payload.email = `x${payload.email}`;
  return `${h}.${b64u(JSON.stringify(payload))}.${s}`;
}

export async function startProvider({
  host = "127.0.0.2", // another loopback address: a different site from Keysmith's 127.0.0.1
  port = 0,
  redirectUris = [],
  clientId = "keysmith",
  clientSecret = "keysmith-test-secret",
  otherClientId = "other-app",
  autoConsent = false,
  idTokenTtl = 3600,
  claimsInIdToken = true,
  log = () => {},
} = {}) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" };
  let mode = "";
  let lastIdToken; // the previous genuine ID token, for "replay"
  const setMode = (m) => {
    if (!MODES.includes(m)) throw new Error(`unknown mode "${m}": one of ${MODES.join(", ")}`);
    mode = m;
  };

  // Listen first so the issuer carries the real port; the provider is mounted after.
  let handler = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise((ok, fail) => server.once("error", fail).listen(port, host, ok));
  const issuer = `http://${host}:${server.address().port}`;

  const configuration = {
    clients: [
      { client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris, token_endpoint_auth_method: "client_secret_basic" },
      { client_id: `${clientId}-post`, client_secret: clientSecret, redirect_uris: redirectUris, token_endpoint_auth_method: "client_secret_post" },
      { client_id: otherClientId, client_secret: "other-secret", redirect_uris: redirectUris },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true }, // S256 is the only method oidc-provider 9 accepts
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "preferred_username"],
      groups: ["groups"], // a custom scope carrying a custom claim
    },
    scopes: ["openid", "offline_access", "email", "profile", "groups"],
    // oidc-provider's default (true) puts scope-requested claims (email, groups...) only
    // in the userinfo response when an access token is issued, i.e. in the code flow the
    // ID token then carries just sub. Most IdPs put them in the ID token too; false does.
    conformIdTokenClaims: !claimsInIdToken,
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: false } },
    ttl: {
      IdToken: () => idTokenTtl,
      AccessToken: 600,
      AuthorizationCode: 60,
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
    },
    async findAccount(_ctx, sub) {
      const account = ACCOUNTS[sub] ?? { email: `${sub}@example.com`, email_verified: true, name: sub, groups: [] };
      return {
        accountId: sub,
        async claims(_use, _scope) {
          // A user principal name, as Entra ID gives one: an address the tenant vouches for.
          return { sub, preferred_username: `${sub}@example.com`, ...account };
        },
      };
    },
    // The provider's error page, with the error in words (and no NOTICE on stdout).
    async renderError(ctx, out) {
      const esc = (v) => String(v).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
      ctx.type = "html";
      ctx.body = `<!DOCTYPE html><title>Error</title><h1>Error</h1>${Object.entries(out).map(([k, v]) => `<p>${esc(k)}: ${esc(v)}</p>`).join("")}`;
    },
    // Skips the consent page when asked: grants what the client asks for on first use.
    ...(autoConsent && {
      async loadExistingGrant(ctx) {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope(ctx.oidc.params.scope);
        await grant.save();
        return grant;
      },
    }),
  };

  const provider = new Provider(issuer, configuration);

  provider.use(async (ctx, next) => {
    if (ctx.method === "POST" && ctx.path === "/__test/mode") {
      const body = await new Promise((ok) => {
        let data = "";
        ctx.req.on("data", (c) => (data += c)).on("end", () => ok(data));
      });
      try {
        setMode(new URLSearchParams(body).get("mode") ?? "");
        ctx.body = { mode };
      } catch (error) {
        ctx.status = 400;
        ctx.body = { error: error.message };
      }
      return;
    }
    await next();
    if (ctx.method === "POST" && ctx.path === "/token" && ctx.status === 200 && ctx.body?.id_token) {
      if (!mode) {
        lastIdToken = ctx.body.id_token;
        return;
      }
      const t = ctx.body.id_token;
      const previous = lastIdToken;
      lastIdToken = t;
      const now = Math.floor(Date.now() / 1000);
      const edits = {
        nonce: (c) => ({ ...c, nonce: "not-the-nonce-keysmith-sent" }),
        "no-nonce": ({ nonce, ...c }) => c,
        audience: (c) => ({ ...c, aud: otherClientId, azp: undefined }),
        expired: (c) => ({ ...c, iat: now - 7200, exp: now - 3600 }),
        issuer: (c) => ({ ...c, iss: "http://127.0.0.9:1" }),
        unverified: (c) => ({ ...c, email_verified: false }),
      };
      let altered;
      if (mode === "tampered") altered = tamper(t);
      else if (mode === "replay") altered = previous; // genuine, unmodified, but another flow's nonce
      else altered = resign(t, privateKey, edits[mode]);
      ctx.body = { ...ctx.body, id_token: altered };
      log(`token response altered: ${mode}`);
      mode = ""; // one token response only
    }
  });

  // Provider extends Koa: callback() is a plain (req, res) handler.
  handler = provider.callback();
  const sockets = new Set();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  return {
    issuer,
    provider,
    clientId,
    clientSecret,
    publicJwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, kid: jwk.kid, alg: "RS256", use: "sig" },
    setMode,
    close: () =>
      new Promise((ok) => {
        server.close(ok);
        for (const s of sockets) s.destroy(); // keep-alive sockets would hold close() open
      }),
  };
}

// Run directly: configuration from the environment, one JSON line on stdout.
if (import.meta.url === `file://${process.argv[1]}`) {
  const p = await startProvider({
    host: process.env.OIDC_HOST || "127.0.0.2",
    port: Number(process.env.OIDC_PORT || 0),
    redirectUris: (process.env.REDIRECT_URI || "http://127.0.0.1:8080/oidc/callback").split(","),
    autoConsent: process.env.AUTO_CONSENT === "1",
    idTokenTtl: Number(process.env.ID_TOKEN_TTL || 3600),
    claimsInIdToken: process.env.CLAIMS_IN_ID_TOKEN !== "0",
    log: (m) => console.error(m),
  });
  console.log(JSON.stringify({ issuer: p.issuer, client_id: p.clientId, client_secret: p.clientSecret }));
  const stop = () => p.close().then(() => process.exit(0));
  process.on("SIGTERM", stop).on("SIGINT", stop);
  // With OIDC_STDIN_LIFELINE=1 a parent holding our stdin open stops us by dying.
  if (process.env.OIDC_STDIN_LIFELINE === "1") process.stdin.on("end", stop).resume();
}
