// Keysmith's web interface in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Started by crates/keysmith-cli/tests/browser.rs, which runs the
// server and seeds the accounts; this script only uses the browser and the public API.
//
// Environment: KEYSMITH_URL, ADMIN_PASSWORD, USER_PASSWORD (for `lead`, admin of team
// `nlp`, and `dev`, a member), optional KEYSMITH_SCREENSHOTS (a directory for the
// README's screenshots), KEYSMITH_SEEN_KEYS (a file to list every key the pages showed,
// so the harness can search the server's log for them).

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const base = process.env.KEYSMITH_URL;
const adminPassword = process.env.ADMIN_PASSWORD;
const userPassword = process.env.USER_PASSWORD;
const shots = process.env.KEYSMITH_SCREENSHOTS;
const seenFile = process.env.KEYSMITH_SEEN_KEYS;
assert.ok(base && adminPassword && userPassword, "KEYSMITH_URL, ADMIN_PASSWORD and USER_PASSWORD are required");

const seenKeys = [];
const visitedUrls = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("framenavigated", (frame) => visitedUrls.push(frame.url()));
  return page;
}

let failures = 0;
async function step(name, page, body) {
  try {
    await body();
    console.log(`ok   ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}\n${error.stack || error}`);
    if (page) {
      console.log(`     at ${page.url()}`);
    }
  }
}

async function screenshot(page, name) {
  if (shots) {
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  }
}

async function api(path, key) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${key}` } });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function signIn(page, username, password, path = "/settings") {
  await page.goto(`${base}${path}`);
  assert.match(page.url(), /\/login\?next=/, "signed-out visitors are sent to sign in");
  // By keyboard: type, Tab to the next field, Enter to submit.
  await page.getByLabel("Username or email").focus();
  await page.keyboard.type(username);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.waitForURL((url) => !url.pathname.startsWith("/login"));
}

/// Reads the key from the page that shows it once, and checks the copy button.
async function readNewKey(page) {
  const field = page.getByTestId("new-key");
  const key = await field.inputValue();
  seenKeys.push(key);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, "Copy puts the key on the clipboard");
  return key;
}

async function createKey(page, name) {
  await page.getByRole("link", { name: "Create new API key" }).click();
  await page.getByLabel("Descriptive name").fill(name);
  await page.getByRole("button", { name: "Create API key" }).click();
  await page.getByRole("heading", { name: "Your new API key" }).waitFor();
  return readNewKey(page);
}

/// Every visible form control has a label (by <label>, aria-label or aria-labelledby).
async function assertLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.type !== "hidden" && !el.hidden)
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], `controls without a label on ${page.url()}`);
}

// ---------------------------------------------------------------------------------
// An org admin: sign in, create a key, read it once, use it, reload, rename, delete.

const admin = await newPage();
let firstKey;
let firstKeyId;

await step("sign in through the form, by keyboard", admin, async () => {
  await admin.goto(`${base}/login`);
  await screenshot(admin, "sign-in");
  await signIn(admin, "admin", adminPassword);
  await admin.getByRole("heading", { name: "User settings" }).waitFor();
});

await step("the user menu leads to User Settings", admin, async () => {
  await admin.goto(`${base}/org/default/teams`);
  await admin.locator("details.menu summary").click();
  await admin.getByRole("link", { name: "User settings" }).click();
  await admin.getByRole("heading", { name: "API keys" }).waitFor();
  await assertLabelled(admin);
});

await step("create a key and read it from the page, once", admin, async () => {
  firstKey = await createKey(admin, "laptop");
  assert.match(firstKey, /^wandb_v1_[A-Za-z0-9]{27}_[A-Za-z0-9]{49}$/);
  assert.match(await admin.getByText("It will not be shown again").textContent(), /not be shown again/);
  firstKeyId = (await admin.getByTestId("key-id").textContent()).trim();
  assert.ok(firstKey.startsWith(`${firstKeyId}_`), "the key ID is the key's public part");
  await screenshot(admin, "key-created");
});

await step("the key works against the API", admin, async () => {
  const me = await api("/api/v1/viewer", firstKey);
  assert.equal(me.status, 200);
  assert.equal(me.body.username, "admin");
});

await step("a reload shows only the key ID", admin, async () => {
  await admin.reload();
  assert.ok(!(await admin.content()).includes(firstKey), "the key is gone from the page");
  await admin.getByText(firstKeyId).waitFor();
  await admin.getByRole("link", { name: "Done" }).click();
  const row = admin.locator(`tr[data-key-id="${firstKeyId}"]`);
  await row.getByRole("cell", { name: "laptop", exact: true }).waitFor();
  assert.ok(!(await admin.content()).includes(firstKey));
  await screenshot(admin, "user-settings");
});

await step("rename a key", admin, async () => {
  await admin.getByRole("link", { name: "Rename laptop" }).click();
  await admin.getByLabel("Descriptive name").fill("work laptop");
  await admin.getByRole("button", { name: "Save name" }).click();
  await admin.getByText("The API key was renamed.").waitFor();
  await admin.locator(`tr[data-key-id="${firstKeyId}"]`).getByRole("cell", { name: "work laptop", exact: true }).waitFor();
});

await step("delete a key after a confirmation; the API refuses it at once", admin, async () => {
  await admin.getByRole("link", { name: "Delete work laptop" }).click();
  await admin.getByText("Scripts and services using this key stop working immediately.").waitFor();
  await screenshot(admin, "delete-confirmation");
  await admin.getByRole("button", { name: "Delete API key" }).click();
  await admin.getByText("It no longer works anywhere.").waitFor();
  assert.equal(await admin.locator(`tr[data-key-id="${firstKeyId}"]`).count(), 0);
  assert.equal((await api("/api/v1/viewer", firstKey)).status, 401);
});

await step("select several keys and delete them together", admin, async () => {
  const a = await createKey(admin, "job a");
  await admin.getByRole("link", { name: "Done" }).click();
  const b = await createKey(admin, "job b");
  await admin.getByRole("link", { name: "Done" }).click();
  // "Select all" (the script's enhancement) ticks every row; then pick two by hand.
  const boxes = admin.locator('input[name="key_id"]');
  await admin.getByLabel("Select all keys").check();
  assert.ok((await boxes.count()) >= 3);
  for (const box of await boxes.all()) assert.ok(await box.isChecked());
  await admin.getByLabel("Select all keys").uncheck();
  await admin.getByLabel("Select job a").check();
  await admin.getByLabel("Select job b").check();
  await admin.getByRole("button", { name: "Delete selected" }).click();
  await admin.getByRole("heading", { name: "Delete 2 API keys" }).waitFor();
  await admin.getByRole("button", { name: "Delete 2 API keys" }).click();
  await admin.getByText("The selected API keys were deleted.").waitFor();
  assert.equal((await api("/api/v1/viewer", a)).status, 401);
  assert.equal((await api("/api/v1/viewer", b)).status, 401);
});

await step("org admins see every key, filter them, and read the audit log", admin, async () => {
  const keep = await createKey(admin, "nightly eval");
  assert.equal((await api("/api/v1/viewer", keep)).status, 200);
  await admin.getByRole("link", { name: "Organization default" }).click();
  await admin.getByRole("heading", { name: "API keys" }).waitFor();
  await admin.getByRole("cell", { name: "nightly eval", exact: true }).waitFor();
  await admin.getByLabel("Kind").selectOption("service_account");
  await admin.getByRole("button", { name: "Apply filters" }).click();
  await admin.getByText("No keys match these filters.").waitFor();
  await admin.getByRole("link", { name: "Clear" }).click();
  await admin.getByLabel("Owner").fill("admin");
  await admin.getByLabel("Sort by").selectOption("last_used");
  await admin.getByRole("button", { name: "Apply filters" }).click();
  await admin.getByRole("cell", { name: "nightly eval", exact: true }).waitFor();
  await assertLabelled(admin);
  await screenshot(admin, "org-keys");
  await admin.getByRole("link", { name: "Audit log" }).click();
  await admin.getByText("api_key.deleted").first().waitFor();
  await screenshot(admin, "audit-log");
  await admin.getByRole("link", { name: "Users" }).click();
  await admin.getByText("lead").first().waitFor();
  await assertLabelled(admin);
  await screenshot(admin, "users");
  await admin.getByRole("link", { name: "Settings" }).click();
  await admin.getByLabel("Allow legacy-format keys").check();
  await admin.getByRole("button", { name: "Save settings" }).click();
  await admin.getByText("Settings saved.").waitFor();
  assert.ok(await admin.getByLabel("Allow legacy-format keys").isChecked());
  await screenshot(admin, "org-settings");
});

await step("rotate a key with a grace period, watch the old key, finish the rotation", admin, async () => {
  await admin.goto(`${base}/settings`);
  const oldKey = await createKey(admin, "nightly train");
  await admin.getByRole("link", { name: "Done" }).click();
  await admin.getByRole("link", { name: "Rotate nightly train" }).click();
  await admin.getByLabel("1 hour").check();
  await admin.getByRole("button", { name: "Rotate API key" }).click();
  const newKey = await readNewKey(admin);
  assert.notEqual(newKey, oldKey);
  assert.equal((await api("/api/v1/viewer", newKey)).status, 200);
  assert.equal((await api("/api/v1/viewer", oldKey)).status, 200, "the old key works during the grace period");
  await admin.getByRole("link", { name: "Done" }).click();
  await admin.getByRole("heading", { name: "Rotating “nightly train”" }).waitFor();
  await admin.getByText("was used after the rotation began").waitFor();
  await admin.getByRole("heading", { name: "Old key" }).waitFor();
  await screenshot(admin, "rotation");
  await admin.getByRole("button", { name: "Finish rotation: delete the old key" }).click();
  await admin.getByText("It no longer works anywhere.").waitFor();
  assert.equal((await api("/api/v1/viewer", oldKey)).status, 401);
  assert.equal((await api("/api/v1/viewer", newKey)).status, 200);
});

await step("org admins register a webhook endpoint and see its secret once", admin, async () => {
  await admin.goto(`${base}/org/default/webhooks`);
  await admin.getByLabel("Endpoint URL").fill("https://hooks.example.com/keysmith");
  await admin.getByRole("button", { name: "Add endpoint" }).click();
  const secret = await admin.locator("#webhook-secret").inputValue();
  assert.match(secret, /^whsec_/);
  await admin.getByRole("link", { name: "Done" }).click();
  await admin.getByRole("cell", { name: "https://hooks.example.com/keysmith", exact: true }).waitFor();
  assert.ok(!(await admin.content()).includes(secret), "shown once");
  await assertLabelled(admin);
  await screenshot(admin, "webhooks");
});

// ---------------------------------------------------------------------------------
// A team admin: /authorize lands on key creation; a service account and its key.

const lead = await newPage();

await step("/authorize lands on the key creation screen after sign-in", lead, async () => {
  await signIn(lead, "lead", userPassword, "/authorize?ref=models");
  assert.equal(new URL(lead.url()).pathname, "/authorize");
  await lead.getByRole("heading", { name: "Create an API key for wandb" }).waitFor();
  assert.equal(await lead.getByLabel("Descriptive name").inputValue(), "wandb SDK");
  await lead.getByRole("button", { name: "Create API key" }).click();
  const key = await readNewKey(lead);
  assert.equal((await api("/api/v1/viewer", key)).body.username, "lead");
});

await step("a team admin creates a service account and a key for it", lead, async () => {
  await lead.getByRole("link", { name: "nlp service accounts" }).click();
  await lead.getByText("This team has no service accounts yet.").waitFor();
  await lead.getByLabel("Name", { exact: true }).fill("ci-bot");
  await lead.getByLabel("Description (optional)").fill("Nightly training jobs");
  await lead.getByRole("button", { name: "Create service account" }).click();
  await lead.getByText("The service account was created.").waitFor();
  await lead.getByRole("link", { name: "Create API key for ci-bot" }).click();
  await lead.getByText("The key will belong to the service account").waitFor();
  await lead.getByLabel("Descriptive name").fill("ci");
  await lead.getByRole("button", { name: "Create API key" }).click();
  const key = await readNewKey(lead);
  const me = await api("/api/v1/viewer", key);
  assert.equal(me.status, 200);
  assert.equal(me.body.username, "ci-bot");
  await lead.getByRole("link", { name: "Done" }).click();
  await lead.getByRole("heading", { name: "ci-bot" }).waitFor();
  await assertLabelled(lead);
  await screenshot(lead, "team-service-accounts");
  await lead.getByRole("link", { name: "Delete ci" }).click();
  await lead.getByRole("button", { name: "Delete API key" }).click();
  await lead.getByText("It no longer works anywhere.").waitFor();
  assert.equal((await api("/api/v1/viewer", key)).status, 401);
});

await step("a team admin cannot reach the organization's pages", lead, async () => {
  const response = await lead.goto(`${base}/org/default/keys`);
  assert.equal(response.status(), 403);
});

// ---------------------------------------------------------------------------------
// A member: no admin pages; forms without the CSRF token are refused.

const dev = await newPage();

await step("a member cannot reach admin pages", dev, async () => {
  await signIn(dev, "dev", userPassword);
  assert.equal(await dev.getByRole("link", { name: "Organization default" }).count(), 0, "no admin link");
  for (const path of ["/org/default/keys", "/org/default/audit-log", "/org/default/users", "/org/default/settings", "/nlp/service-accounts"]) {
    const response = await dev.goto(`${base}${path}`);
    assert.equal(response.status(), 403, path);
    await dev.getByRole("heading", { name: "Not allowed" }).waitFor();
  }
});

await step("anyone can revoke a leaked key without signing in", null, async () => {
  const anon = await newPage();
  const leaked = await (async () => {
    await dev.goto(`${base}/settings`);
    return createKey(dev, "pasted in chat");
  })();
  await anon.goto(`${base}/login`);
  await anon.getByRole("link", { name: "Revoke it" }).click();
  await anon.getByLabel("Exposed key").fill(leaked);
  await anon.getByRole("button", { name: "Revoke key" }).click();
  await anon.getByText("no longer works anywhere").waitFor();
  assert.equal((await api("/api/v1/viewer", leaked)).status, 401);
  await anon.context().close();
});

await step("a form posted without its CSRF token is refused", dev, async () => {
  const response = await dev.request.post(`${base}/keys/new`, { form: { name: "no token" } });
  assert.equal(response.status(), 403);
  assert.match(await response.text(), /csrf_token_invalid/);
});

await step("a form posted from another site is refused", dev, async () => {
  // A page on another origin that posts to Keysmith, as an attacker's page would.
  const attacker = createServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><form method="post" action="${base}/keys/new">
      <input name="name" value="planted"><input name="csrf" value="guessed">
      <button>Win a prize</button></form>`);
  });
  await new Promise((resolve) => attacker.listen(0, "127.0.0.1", resolve));
  try {
    // Same host, another port: same-site, so the browser sends the session cookie
    // along and only the server's checks stand in the way.
    await dev.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const [response] = await Promise.all([
      dev.waitForNavigation(),
      dev.getByRole("button", { name: "Win a prize" }).click(),
    ]);
    assert.equal(response.status(), 403);
  } finally {
    attacker.close();
  }
  await dev.goto(`${base}/settings`);
  assert.equal(await dev.getByText("planted").count(), 0, "no key was created");
});

await browser.close();

await step("no page put a key in a URL", null, async () => {
  for (const key of seenKeys) {
    for (const url of visitedUrls) {
      assert.ok(!url.includes(key), `a key appeared in ${url}`);
    }
  }
});

if (seenFile) {
  writeFileSync(seenFile, seenKeys.join("\n"), { mode: 0o600 });
}
console.log(failures === 0 ? "all browser checks passed" : `${failures} browser check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
