// A sign-in through Keysmith's single sign-on by plain HTTP, as a browser does it: start
// at Keysmith's sign-in link, follow the redirects to the OpenID provider
// (oidc-provider.mjs), answer its login and consent pages, come back to Keysmith's
// callback, and report where it ended. Cookies are kept per host, as a browser keeps
// them.
//
//   node sso-flow.mjs <keysmith start URL> <login> [mode] [callback-edit]
//
// mode: a mode of oidc-provider.mjs (the next token response is altered), "" for none.
// callback-edit: "drop-cookie" (the callback arrives without Keysmith's sign-in cookie,
// as from another browser), "state" (the state parameter changed), "cancel" (the
// person cancels at the provider).
// Prints one JSON line: {status, location, cookies (names Keysmith set at the end),
// h1, message, code}.

const [start, login, mode = "", edit = ""] = process.argv.slice(2);
const jars = new Map(); // host -> Map(name -> value)
const jar = (url) => {
  const host = new URL(url).host;
  if (!jars.has(host)) jars.set(host, new Map());
  return jars.get(host);
};
let lastSet = [];
async function go(url, init = {}) {
  const cookies = [...jar(url)].map(([k, v]) => `${k}=${v}`).join("; ");
  const res = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie: cookies } });
  lastSet = res.headers.getSetCookie();
  for (const c of lastSet) {
    const [pair, ...attrs] = c.split(";");
    const i = pair.indexOf("=");
    const [name, value] = [pair.slice(0, i).trim(), pair.slice(i + 1)];
    if (/max-age=0/i.test(attrs.join(";"))) jar(url).delete(name);
    else jar(url).set(name, value);
  }
  return res;
}
const form = (o) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(o) });
const keysmith = new URL(start).origin;

let res = await go(start);
let location = res.headers.get("location");
if (!location) {
  console.log(JSON.stringify({ status: res.status, stage: "start", body: (await res.text()).slice(0, 500) }));
  process.exit(0);
}
const issuer = new URL(location).origin;
if (mode) await fetch(`${issuer}/__test/mode`, form({ mode }));
for (let hop = 0; hop < 12 && !location.startsWith(keysmith); hop++) {
  if (edit === "cancel" && location.includes("/interaction/")) {
    const html = await (await go(location)).text();
    const abort = html.match(/href="([^"]*abort[^"]*)"/);
    location = new URL(abort[1].replace(/&amp;/g, "&"), issuer).href;
  }
  res = await go(location);
  if (res.status === 200) {
    const html = await res.text();
    const action = new URL(html.match(/action="([^"]+)"/)[1], issuer).href;
    const prompt = html.match(/name="prompt" value="(\w+)"/)[1];
    res = await go(action, form(prompt === "login" ? { prompt, login, password: "anything" } : { prompt }));
  }
  location = new URL(res.headers.get("location"), issuer).href;
}
const callback = new URL(location);
if (edit === "drop-cookie") jar(keysmith).clear();
if (edit === "state") callback.searchParams.set("state", "not-the-state");
res = await go(callback.href);
const body = res.status === 200 || res.status >= 400 ? await res.text() : "";
const pick = (re) => (body.match(re) || [])[1];
console.log(
  JSON.stringify({
    status: res.status,
    location: res.headers.get("location"),
    cookies: lastSet.map((c) => c.split(";")[0]).filter((c) => !c.endsWith("=")).map((c) => c.split("=")[0]),
    session: jar(keysmith).get("keysmith_session") ?? null,
    h1: pick(/<h1>([^<]*)<\/h1>/),
    message: pick(/<p class="error" role="alert">([^<]*)<\/p>/),
    code: pick(/Error code: <code>([^<]*)<\/code>/),
  }),
);
