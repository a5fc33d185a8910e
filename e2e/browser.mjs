// Keysmith's web interface in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Started by crates/keysmith-cli/tests/browser.rs, which runs the
// server and seeds the accounts; this script only uses the browser and the public API.
//
// Environment: KEYSMITH_URL, ADMIN_PASSWORD, USER_PASSWORD (for `lead`, admin of team
// `nlp`, and `dev`, a member), optional KEYSMITH_SCREENSHOTS (a directory for the
// README's screenshots: `<page>.png` at 1280 px, `mobile/<page>.png` at 390 px; with
// KEYSMITH_SCREENSHOTS_WIDE=1 also `wide/<page>.png` at 1920 px), KEYSMITH_SEEN_KEYS
// (a file to list every key the pages showed, so the harness can search the server's
// log for them).
//
// Every page the script reaches is laid out at 1280, 1920 and 390 px wide: none may
// scroll sideways, no table header may wrap, and row actions stay on one line.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const base = process.env.KEYSMITH_URL;
const adminPassword = process.env.ADMIN_PASSWORD;
const adminKey = process.env.ADMIN_KEY;
const userPassword = process.env.USER_PASSWORD;
const shots = process.env.KEYSMITH_SCREENSHOTS;
const wideShots = shots && process.env.KEYSMITH_SCREENSHOTS_WIDE === "1";
const seenFile = process.env.KEYSMITH_SEEN_KEYS;
if (shots) {
  mkdirSync(`${shots}/mobile`, { recursive: true });
  if (wideShots) mkdirSync(`${shots}/wide`, { recursive: true });
}
assert.ok(
  base && adminPassword && adminKey && userPassword,
  "KEYSMITH_URL, ADMIN_PASSWORD, ADMIN_KEY and USER_PASSWORD are required",
);

const seenKeys = [];
const visitedUrls = [];
const cspViolations = [];
const laidOut = new Set();

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

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("framenavigated", (frame) => visitedUrls.push(frame.url()));
  // The pages allow script and style from 'self' only: anything inline is refused,
  // and Chromium says so on the console.
  page.on("console", (message) => {
    // Keysmith's pages only: the test OpenID provider's pages are not ours to judge.
    if (/Content Security Policy/i.test(message.text()) && page.url().startsWith(base)) {
      cspViolations.push(`${page.url()}: ${message.text()}`);
    }
  });
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

/// What is wrong with the page's layout at the current width, in words: the page
/// scrolls sideways (and which elements stick out), a table header wraps, or a row's
/// actions take more than one line. Runs in the page.
function layoutProblems() {
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += `#${el.id}`;
    for (const c of el.classList) text += `.${c}`;
    const words = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return words ? `${text} "${words}"` : text;
  };
  // The lines a box's visible content takes: text rectangles (and controls, icons)
  // grouped by the line they sit on. Text hidden for screen readers only is skipped.
  const hidden = (el, root) => {
    for (let a = el; a && a !== root.parentElement; a = a.parentElement) {
      const box = a.getBoundingClientRect();
      if (box.width <= 1 || box.height <= 1 || !a.checkVisibility()) return true;
    }
    return false;
  };
  const lineCount = (root) => {
    const rects = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || hidden(node.parentElement, root)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) rects.push(r);
    }
    for (const el of root.querySelectorAll("input, select, button, svg")) {
      if (!hidden(el, root)) rects.push(el.getBoundingClientRect());
    }
    const lines = [];
    for (const r of rects.sort((a, b) => a.top - b.top)) {
      const middle = (r.top + r.bottom) / 2;
      if (!lines.some((line) => middle >= line.top && middle <= line.bottom)) lines.push(r);
    }
    return lines.length;
  };
  const problems = [];
  const width = window.innerWidth;
  const page = document.documentElement.scrollWidth;
  if (page > width) {
    const clipped = (el) => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== "visible") return true;
      }
      return false;
    };
    const out = [...document.body.querySelectorAll("*")]
      .filter((el) => el.getBoundingClientRect().right > width + 0.5 && !clipped(el))
      .slice(0, 4)
      .map(describe);
    problems.push(`the page scrolls sideways: ${page} px wide in a ${width} px window; sticking out: ${out.join("; ")}`);
  }
  for (const th of document.querySelectorAll("th")) {
    if (!th.checkVisibility() || th.getBoundingClientRect().width <= 1) continue;
    const lines = lineCount(th);
    if (lines > 1) problems.push(`a table header wraps onto ${lines} lines: ${describe(th)}`);
  }
  // No control sticks out of its form.
  for (const form of document.querySelectorAll("main form")) {
    const box = form.getBoundingClientRect();
    if (box.width <= 1 || !form.checkVisibility()) continue;
    for (const control of form.querySelectorAll("input, select, button, a.button")) {
      const r = control.getBoundingClientRect();
      if (r.width <= 1 || !control.checkVisibility()) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1) {
        problems.push(`a control sticks out of its form: ${describe(control)} in ${describe(form)}`);
      }
    }
  }
  // From 1280 px on, tables fit the page: none scrolls inside its own box either.
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    if (width >= 1280 && wrap.scrollWidth > wrap.clientWidth + 1) {
      problems.push(`a table is wider than its box (${wrap.scrollWidth} > ${wrap.clientWidth} px): ${describe(wrap.querySelector("tr") || wrap)}`);
    }
  }
  for (const actions of document.querySelectorAll(".row-actions")) {
    if (!actions.checkVisibility() || width < 1024) continue;
    const lines = lineCount(actions);
    if (lines > 1) problems.push(`a row's actions take ${lines} lines: ${describe(actions.closest("tr") || actions)}`);
  }
  return problems;
}

/// Lays the page out at 1280, 1920 and 390 px and checks it at each (see
/// layoutProblems); saves the screenshots when asked to. `name` names the page.
async function checkLayout(page, name) {
  const size = page.viewportSize();
  try {
    for (const width of [1280, 1920, 390]) {
      await page.setViewportSize({ width, height: 800 });
      await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      const problems = await page.evaluate(layoutProblems);
      assert.deepEqual(problems, [], `the layout of "${name}" (${page.url()}) at ${width} px`);
      if (shots && width === 1280) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
      if (shots && width === 390) await page.screenshot({ path: `${shots}/mobile/${name}.png`, fullPage: true });
      if (wideShots && width === 1920) await page.screenshot({ path: `${shots}/wide/${name}.png`, fullPage: true });
    }
  } finally {
    await page.setViewportSize(size);
  }
  laidOut.add(name);
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
let inviteToken;

await step("a wrong password is explained on the form", admin, async () => {
  await admin.goto(`${base}/login`);
  await admin.getByLabel("Username or email").fill("admin");
  await admin.getByLabel("Password").fill("not-the-password");
  await admin.getByRole("button", { name: "Sign in" }).click();
  const error = admin.getByRole("alert");
  await error.getByText("Wrong username or password.").waitFor();
  assert.ok(await error.evaluate((el) => !!el.closest("form")), "the message sits in the form, above its fields");
  assert.equal(await admin.getByLabel("Username or email").getAttribute("aria-describedby"), "login-error");
  await checkLayout(admin, "sign-in-error");
});

await step("sign in through the form, by keyboard", admin, async () => {
  await admin.goto(`${base}/login`);
  await checkLayout(admin, "sign-in");
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

await step("the user menu is a button with the user's name, for the keyboard too", admin, async () => {
  const summary = admin.locator("details.menu summary");
  assert.match(await summary.textContent(), /admin/);
  const signOut = admin.getByRole("button", { name: "Sign out" });
  assert.ok(!(await signOut.isVisible()), "closed at first");
  await summary.focus();
  await admin.keyboard.press("Enter");
  await signOut.waitFor();
  await admin.getByText("Signed in as").waitFor();
  if (shots) {
    await admin.waitForTimeout(300);
    await admin.screenshot({ path: `${shots}/user-menu.png` });
  }
  await admin.keyboard.press("Escape");
  await signOut.waitFor({ state: "hidden" });
  assert.ok(await summary.evaluate((el) => el === document.activeElement), "Escape gives the focus back");
  // Space opens it too; a click elsewhere closes it.
  await admin.keyboard.press(" ");
  await signOut.waitFor();
  await admin.getByRole("heading", { name: "User settings" }).click();
  await signOut.waitFor({ state: "hidden" });
});

await step("the profile shows each organization with the user's role", admin, async () => {
  const table = admin.getByRole("table", { name: "Organizations" });
  await table.getByRole("rowheader", { name: "default" }).waitFor();
  await table.getByRole("cell", { name: "Admin", exact: true }).waitFor();
  await table.getByRole("columnheader", { name: "Role" }).waitFor();
});

await step("the key creation form, and its error in place", admin, async () => {
  await admin.getByRole("link", { name: "Create new API key" }).click();
  await admin.getByLabel("Descriptive name").waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "key-new");
  await admin.getByLabel("Descriptive name").fill("   ");
  await admin.getByRole("button", { name: "Create API key" }).click();
  const error = admin.locator("#name-error");
  await error.waitFor();
  assert.equal(await error.getAttribute("role"), "alert");
  assert.ok(await error.evaluate((el) => !!el.closest("form")), "the message sits in the form");
  assert.match(await admin.getByLabel("Descriptive name").getAttribute("aria-describedby"), /name-error/);
  await checkLayout(admin, "key-new-error");
  await admin.goto(`${base}/settings`);
});

await step("create a key and read it from the page, once", admin, async () => {
  firstKey = await createKey(admin, "laptop");
  assert.match(firstKey, /^wandb_v1_[A-Za-z0-9]{27}_[A-Za-z0-9]{49}$/);
  assert.match(await admin.getByText("It will not be shown again").textContent(), /not be shown again/);
  firstKeyId = (await admin.getByTestId("key-id").textContent()).trim();
  assert.ok(firstKey.startsWith(`${firstKeyId}_`), "the key ID is the key's public part");
  await checkLayout(admin, "key-created");
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
});

await step("a read-only key from the form reads but changes nothing", admin, async () => {
  await admin.getByRole("link", { name: "Create new API key" }).click();
  await admin.getByLabel("Descriptive name").fill("dashboard");
  const everything = admin.getByLabel("Everything its owner may do");
  assert.ok(await everything.isChecked(), "the default is the owner's full power, as before scopes");
  await admin.getByLabel("Read only").check();
  await admin.getByRole("button", { name: "Create API key" }).click();
  await admin.getByRole("heading", { name: "Your new API key" }).waitFor();
  const key = await readNewKey(admin);
  assert.equal((await admin.getByTestId("key-scope").textContent()).trim(), "Read only");
  const me = await api("/api/v1/viewer", key);
  assert.equal(me.body.auth.scope, "read");
  const made = await fetch(`${base}/api/v1/api-keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "from a read key" }),
  });
  assert.equal(made.status, 403);
  assert.equal((await made.json()).error.code, "insufficient_scope");
  await admin.getByRole("link", { name: "Done" }).click();
});

await step("a long key name is cut to fit, the whole name in its tooltip", admin, async () => {
  const long = "nightly evaluation of the multilingual model on the full benchmark suite, west cluster";
  await createKey(admin, long);
  await admin.getByRole("link", { name: "Done" }).click();
  const name = admin.locator("td.primary .truncate", { hasText: long });
  assert.equal(await name.getAttribute("title"), long);
  const cut = await name.evaluate((el) => el.scrollWidth > el.clientWidth);
  assert.ok(cut, "the name is cut with an ellipsis at 1280 px");
  await checkLayout(admin, "user-settings");
});

await step("on a phone the rows are cards, and still a table to screen readers", admin, async () => {
  await admin.setViewportSize({ width: 390, height: 800 });
  try {
    const row = admin.locator(`tr[data-key-id="${firstKeyId}"]`);
    assert.equal(await row.evaluate((tr) => getComputedStyle(tr).display), "grid", "a card");
    await row.getByRole("cell", { name: "laptop", exact: true }).waitFor();
    await admin.getByRole("columnheader", { name: "Key name" }).waitFor({ state: "attached" });
    // The action's word shows beside its icon; the name stays "Rename laptop".
    const rename = admin.getByRole("link", { name: "Rename laptop" });
    const word = await rename.locator(".action-label").boundingBox();
    assert.ok(word && word.width > 20, `the word shows: ${JSON.stringify(word)}`);
  } finally {
    await admin.setViewportSize({ width: 1280, height: 800 });
  }
});

await step("rename a key", admin, async () => {
  await admin.getByRole("link", { name: "Rename laptop" }).click();
  await admin.getByLabel("Descriptive name").waitFor();
  await checkLayout(admin, "rename");
  await admin.getByLabel("Descriptive name").fill("work laptop");
  await admin.getByRole("button", { name: "Save name" }).click();
  await admin.getByText("The API key was renamed.").waitFor();
  await admin.locator(`tr[data-key-id="${firstKeyId}"]`).getByRole("cell", { name: "work laptop", exact: true }).waitFor();
});

await step("delete a key after a confirmation; the API refuses it at once", admin, async () => {
  await admin.getByRole("link", { name: "Delete work laptop" }).click();
  await admin.getByText("Scripts and services using this key stop working immediately.").waitFor();
  await checkLayout(admin, "delete-confirmation");
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
  await checkLayout(admin, "delete-selected");
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
  await admin.getByLabel("Owner").fill("");
  await admin.getByRole("button", { name: "Apply filters" }).click();
  await admin.getByRole("cell", { name: "nightly eval", exact: true }).waitFor();
  await checkLayout(admin, "org-keys");
  // A key that expires in three days, made through the API: the report lists it.
  const expiring = await fetch(`${base}/api/v1/api-keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "weekly sync", expires_in_days: 3 }),
  });
  assert.equal(expiring.status, 201);
  seenKeys.push((await expiring.json()).key);
  await admin.getByRole("link", { name: "Key report" }).click();
  await admin.getByRole("heading", { name: "Key report" }).waitFor();
  await admin.getByRole("heading", { name: "Expiring soon (1)" }).waitFor();
  await admin.getByRole("cell", { name: "weekly sync", exact: true }).waitFor();
  await admin.getByRole("heading", { name: /^Over-privileged/ }).waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "key-report");
  await admin.getByRole("link", { name: "Audit log" }).click();
  await admin.getByText("api_key.deleted").first().waitFor();
  await checkLayout(admin, "audit-log");
  await admin.getByRole("link", { name: "Users" }).click();
  await admin.getByText("lead").first().waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "users");
  await admin.getByRole("link", { name: "Teams" }).click();
  await admin.getByRole("link", { name: "Service accounts of nlp" }).waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "teams");
  await admin.getByRole("link", { name: "Settings" }).click();
  await admin.getByLabel("Allow legacy-format keys").check();
  await admin.getByRole("button", { name: "Save settings" }).click();
  await admin.getByText("Settings saved.").waitFor();
  assert.ok(await admin.getByLabel("Allow legacy-format keys").isChecked());
  await checkLayout(admin, "org-settings");
});

await step("the filter bar's controls line up", admin, async () => {
  await admin.goto(`${base}/org/default/keys`);
  const boxes = await admin.locator("form.filters").evaluate((form) =>
    [...form.querySelectorAll("input, select, button, a.button")].map((el) => {
      const r = el.getBoundingClientRect();
      return { name: el.id || el.textContent.trim(), top: Math.round(r.top), bottom: Math.round(r.bottom), left: r.left, right: r.right };
    }),
  );
  const heights = new Set(boxes.map((b) => b.bottom - b.top));
  assert.equal(heights.size, 1, `every control is as high as the others: ${JSON.stringify(boxes)}`);
  // Controls on the same row share their top and bottom edges, and none touch.
  const rows = new Map();
  for (const b of boxes) rows.set(b.bottom, [...(rows.get(b.bottom) || []), b]);
  for (const row of rows.values()) {
    assert.equal(new Set(row.map((b) => b.top)).size, 1, JSON.stringify(row));
    const sorted = row.sort((a, b) => a.left - b.left);
    for (let i = 1; i < sorted.length; i += 1) {
      assert.ok(sorted[i].left - sorted[i - 1].right >= 6, `${sorted[i - 1].name} and ${sorted[i].name} keep apart`);
    }
  }
});

await step("an admin invites a user and is shown a link to this server's invitation page", admin, async () => {
  await admin.goto(`${base}/org/default/users`);
  await admin.getByLabel("Username", { exact: true }).fill("ada");
  await admin.getByLabel("Email (optional)").fill("ada@example.com");
  await admin.getByRole("button", { name: "Add user" }).click();
  await admin.getByRole("heading", { name: "User invited" }).waitFor();
  inviteToken = await admin.getByTestId("invite-token").inputValue();
  seenKeys.push(inviteToken);
  const link = admin.getByRole("link", { name: `${base}/invite` });
  assert.equal(new URL(await link.evaluate((a) => a.href)).href, `${base}/invite`);
  const text = await admin.locator("main").textContent();
  assert.ok(!text.includes("<server>") && !text.includes("/api/v1/invites"), text);
  await checkLayout(admin, "user-invited");
});

await step("rotate a key with a grace period, watch the old key, finish the rotation", admin, async () => {
  await admin.goto(`${base}/settings`);
  const oldKey = await createKey(admin, "nightly train");
  await admin.getByRole("link", { name: "Done" }).click();
  await admin.getByRole("link", { name: "Rotate nightly train" }).click();
  await admin.getByText("Keep the old key working for").waitFor();
  await checkLayout(admin, "rotate");
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
  await checkLayout(admin, "rotation");
  await admin.getByRole("button", { name: "Finish rotation: delete the old key" }).click();
  await admin.getByText("It no longer works anywhere.").waitFor();
  assert.equal((await api("/api/v1/viewer", oldKey)).status, 401);
  assert.equal((await api("/api/v1/viewer", newKey)).status, 200);
});

// A receiver for the webhook deliveries, on this machine: deliveries go nowhere else.
const receiver = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.statusCode = 204;
    res.end();
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/keysmith`;

await step("org admins register a webhook endpoint and see its secret once", admin, async () => {
  await admin.goto(`${base}/org/default/webhooks`);
  await admin.getByLabel("Endpoint URL").fill(hookUrl);
  await admin.getByRole("button", { name: "Add endpoint" }).click();
  const secret = await admin.locator("#webhook-secret").inputValue();
  assert.match(secret, /^whsec_/);
  seenKeys.push(secret);
  await checkLayout(admin, "webhook-secret");
  await admin.getByRole("link", { name: "Done" }).click();
  await admin.getByRole("cell", { name: hookUrl, exact: true }).waitFor();
  assert.ok(!(await admin.content()).includes(secret), "shown once");
  await assertLabelled(admin);
  // A second endpoint with a long address and a description, cut to fit.
  const longUrl = `${hookUrl}/production/key-lifecycle-events/for-the-security-team?source=keysmith&format=standard-webhooks`;
  await admin.getByLabel("Endpoint URL").fill(longUrl);
  await admin.getByLabel("Description (optional)").fill("Security team: alerts on exposed and rotated keys");
  await admin.getByRole("button", { name: "Add endpoint" }).click();
  seenKeys.push(await admin.locator("#webhook-secret").inputValue());
  await admin.getByRole("link", { name: "Done" }).click();
  assert.equal(await admin.locator("td.primary code.truncate", { hasText: "for-the-security-team" }).getAttribute("title"), longUrl);
  await checkLayout(admin, "webhooks");
});

await step("an endpoint's deliveries and the rotation of its signing secret", admin, async () => {
  await admin.goto(`${base}/settings`);
  await createKey(admin, "triggers a delivery");
  await admin.goto(`${base}/org/default/webhooks`);
  await admin.getByRole("link", { name: `Deliveries to ${hookUrl}`, exact: true }).click();
  await admin.getByRole("heading", { name: "Deliveries" }).waitFor();
  // The server queues deliveries once a second: look again until the event is there.
  for (let i = 0; i < 20 && !(await admin.getByText("api_key.created").count()); i += 1) {
    await admin.waitForTimeout(500);
    await admin.reload();
  }
  await admin.getByText("api_key.created").first().waitFor();
  await checkLayout(admin, "deliveries");
  await admin.getByRole("link", { name: "All endpoints" }).click();
  await admin.getByRole("link", { name: `Rotate signing secret of ${hookUrl}`, exact: true }).click();
  await admin.getByRole("heading", { name: "Rotate signing secret" }).waitFor();
  await checkLayout(admin, "webhook-rotate-secret");
});

// A JWT issuer on this machine, as a CI platform publishes one: its discovery document
// and key set, which Keysmith reads when the issuer is trusted.
const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid: "browser", alg: "ES256", use: "sig" }] };
const issuer = createServer((req, res) => {
  const url = `http://127.0.0.1:${issuer.address().port}`;
  const body = req.url === "/.well-known/openid-configuration" ? { issuer: url, jwks_uri: `${url}/jwks` } : jwks;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(body));
});
await new Promise((resolve) => issuer.listen(0, "127.0.0.1", resolve));
const issuerUrl = `http://127.0.0.1:${issuer.address().port}`;

await step("org admins trust a JWT issuer for identity federation", admin, async () => {
  await admin.goto(`${base}/org/default/federation`);
  await admin.getByText("No JWT issuers yet.").waitFor();
  await admin.getByLabel("Issuer URL").fill(issuerUrl);
  await admin.getByRole("button", { name: "Trust issuer" }).click();
  await admin.getByText("The issuer is trusted").waitFor();
  await admin.getByRole("cell", { name: issuerUrl, exact: true }).waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "federation");
});
issuer.close();

// ---------------------------------------------------------------------------------
// Single sign-on through a real OpenID provider: panva's oidc-provider (certified), on
// 127.0.0.2 so that the round trip is cross-site, with its own login and consent pages.
// browser.rs put its client secret in the server's sso_secrets_dir as `test-idp`.

const { startProvider, ACCOUNTS } = await import("./oidc-provider.mjs");
const op = await startProvider({ redirectUris: [`${base}/oidc/callback`] });

/// A fresh browser (no provider session) that reaches nothing off this machine: the
/// provider's pages load a web font.
async function ssoPage() {
  const page = await newPage();
  await page.context().route((url) => !["127.0.0.1", "127.0.0.2"].includes(url.hostname), (route) => route.abort());
  return page;
}

/// From Keysmith's sign-in page through the provider's login and consent pages.
async function signInThroughProvider(page, login) {
  await page.goto(`${base}/login`);
  await page.getByRole("link", { name: "Sign in with Test IdP" }).click();
  await page.getByPlaceholder("Enter any login").fill(login);
  await page.getByPlaceholder("and password").fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL((url) => url.origin === base);
}

const orgRole = async (username) =>
  (await api("/api/v1/orgs/default/users", adminKey)).body.items.find((u) => u.username === username)?.role;

await step("sign in through the organization's identity provider, made an admin by a group", null, async () => {
  const response = await fetch(`${base}/api/v1/orgs/default/sso-providers`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      name: "Test IdP", issuer: op.issuer, client_id: "keysmith", client_secret_file: "test-idp",
      scopes: "openid email profile groups", jit: true,
      group_rules: [{ group: "ml-admins", org_role: "admin" }],
    }),
  });
  assert.equal(response.status, 201, await response.text());
  const page = await ssoPage();
  await page.goto(`${base}/login`);
  await checkLayout(page, "sign-in-sso");
  await signInThroughProvider(page, "alice");
  assert.equal(new URL(page.url()).pathname, "/settings");
  assert.match(await page.locator("details.menu summary").textContent(), /alice/);
  const key = await createKey(page, "through single sign-on");
  assert.equal((await api("/api/v1/viewer", key)).body.username, "alice");
  assert.equal(await orgRole("alice"), "admin");
  await page.context().close();
});

await step("org admins see the providers, add one with group rules in the form, and remove it", admin, async () => {
  await admin.goto(`${base}/org/default/sso`);
  await admin.getByRole("cell", { name: "Test IdP", exact: true }).waitFor();
  await admin.getByText("ml-admins = admin").waitFor();
  await admin.getByLabel("Name").fill("Backup IdP");
  await admin.getByLabel("Issuer URL").fill(op.issuer);
  await admin.getByLabel("Client ID").fill("keysmith");
  await admin.getByLabel("Client secret file").fill("test-idp");
  await admin.getByLabel("Group rules (optional)").fill("team-nlp = team nlp\nnlp-leads = team nlp admin");
  await admin.getByRole("button", { name: "Add provider" }).click();
  await admin.getByText("The provider was added").waitFor();
  await admin.getByText("nlp-leads = team nlp admin").waitFor();
  await assertLabelled(admin);
  await checkLayout(admin, "sso-providers");
  await admin.getByRole("button", { name: "Remove Backup IdP" }).click();
  await admin.getByText("The provider was removed").waitFor();
  assert.equal(await admin.getByText("Backup IdP").count(), 0);
});

await step("a group the provider adds takes effect at the next sign-in", null, async () => {
  const page = await ssoPage();
  await signInThroughProvider(page, "bob");
  assert.equal(await orgRole("bob"), "member");
  await page.context().close();
  ACCOUNTS.bob.groups = ["ml-admins"];
  const again = await ssoPage();
  await signInThroughProvider(again, "bob");
  assert.equal(await orgRole("bob"), "admin");
  await again.context().close();
});

await step("an ID token with another sign-in's nonce is refused with a page, and nobody is signed in", null, async () => {
  const page = await ssoPage();
  op.setMode("nonce");
  await signInThroughProvider(page, "carol");
  await page.getByRole("heading", { name: "Single sign-on failed" }).waitFor();
  await page.getByText("could not be verified").waitFor();
  await checkLayout(page, "sso-refused");
  const cookies = await page.context().cookies(base);
  assert.ok(!cookies.some((c) => c.name === "keysmith_session"), "no session");
  assert.equal(await orgRole("carol"), undefined, "nobody was made");
  await page.context().close();
});
await step("when the organization requires single sign-on, the provider comes first", null, async () => {
  const setRequired = (on) =>
    fetch(`${base}/api/v1/orgs/default`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ sso_required: on }),
    });
  assert.equal((await setRequired(true)).status, 200);
  const page = await newPage();
  try {
    await page.goto(`${base}/login`);
    await page.getByRole("link", { name: "Sign in with Test IdP" }).waitFor();
    assert.ok(!(await page.getByLabel("Password").isVisible()), "the password form is folded away");
    await page.getByText("Sign in with a password (organization admins)").click();
    await page.getByLabel("Password").waitFor();
    await assertLabelled(page);
    await checkLayout(page, "sign-in-sso-required");
  } finally {
    assert.equal((await setRequired(false)).status, 200);
    await page.context().close();
  }
});
await op.close();

// ---------------------------------------------------------------------------------
// A team admin: /authorize lands on key creation; a service account and its key.

const lead = await newPage();

await step("/authorize lands on the key creation screen after sign-in", lead, async () => {
  await signIn(lead, "lead", userPassword, "/authorize?ref=models");
  assert.equal(new URL(lead.url()).pathname, "/authorize");
  await lead.getByRole("heading", { name: "Create an API key for wandb" }).waitFor();
  assert.equal(await lead.getByLabel("Descriptive name").inputValue(), "wandb SDK");
  await checkLayout(lead, "authorize");
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
  await checkLayout(lead, "team-service-accounts");
  await lead.getByRole("link", { name: "Delete ci" }).click();
  await lead.getByRole("button", { name: "Delete API key" }).click();
  await lead.getByText("It no longer works anywhere.").waitFor();
  assert.equal((await api("/api/v1/viewer", key)).status, 401);
});

await step("a team admin cannot reach the organization's pages", lead, async () => {
  const response = await lead.goto(`${base}/org/default/keys`);
  assert.equal(response.status(), 403);
  await lead.getByRole("heading", { name: "Not allowed" }).waitFor();
  await checkLayout(lead, "not-allowed");
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
  await assertLabelled(anon);
  await checkLayout(anon, "revoke-exposed");
  await anon.getByLabel("Exposed key").fill(leaked);
  await anon.getByRole("button", { name: "Revoke key" }).click();
  await anon.getByText("no longer works anywhere").waitFor();
  assert.equal((await api("/api/v1/viewer", leaked)).status, 401);
  await anon.context().close();
});

await step("a page that does not exist is a page, the API's paths stay JSON", dev, async () => {
  const response = await dev.goto(`${base}/no-such-page`);
  assert.equal(response.status(), 404);
  await dev.getByRole("heading", { name: "Page not found" }).waitFor();
  await checkLayout(dev, "not-found");
  await dev.getByRole("link", { name: "Go to the home page" }).click();
  await dev.getByRole("heading", { name: "User settings" }).waitFor();
  const api404 = await dev.goto(`${base}/api/v1/no-such-thing`);
  assert.equal(api404.status(), 404);
  assert.match(api404.headers()["content-type"], /^application\/json/);
  assert.equal((await api404.json()).error.code, "route_not_found");
});

await step("the invited person opens the link, sets a password and signs in", null, async () => {
  assert.ok(inviteToken, "the admin's step showed a token");
  const ada = await newPage();
  await ada.goto(`${base}/invite`);
  await assertLabelled(ada);
  await checkLayout(ada, "invite");
  await ada.getByLabel("Invitation token").fill(inviteToken);
  await ada.getByLabel("New password", { exact: true }).fill("ada-chose-this-password");
  await ada.getByLabel("Confirm new password").fill("ada-chose-this-password");
  await ada.getByRole("button", { name: "Set password" }).click();
  await ada.getByText("Your password is set.").waitFor();
  await ada.getByLabel("Username or email").fill("ada");
  await ada.getByLabel("Password").fill("ada-chose-this-password");
  await ada.getByRole("button", { name: "Sign in" }).click();
  await ada.getByRole("heading", { name: "User settings" }).waitFor();
  await ada.getByRole("table", { name: "Organizations" }).getByRole("cell", { name: "Member", exact: true }).waitFor();
  await ada.context().close();
});

await step("without script every page still works: the menu opens, the key shows", null, async () => {
  const plain = await newPage({ javaScriptEnabled: false });
  await signIn(plain, "dev", userPassword);
  await plain.getByRole("heading", { name: "User settings" }).waitFor();
  await plain.getByRole("link", { name: "Create new API key" }).click();
  await plain.getByLabel("Descriptive name").fill("no script");
  await plain.getByRole("button", { name: "Create API key" }).click();
  const key = await plain.getByTestId("new-key").inputValue();
  seenKeys.push(key);
  assert.equal((await api("/api/v1/viewer", key)).status, 200);
  assert.ok(!(await plain.getByRole("button", { name: "Copy" }).isVisible()), "no Copy button without script");
  const summary = plain.locator("details.menu summary");
  await summary.focus();
  await plain.keyboard.press("Enter");
  await plain.getByRole("link", { name: "User settings" }).click();
  await plain.getByRole("heading", { name: "User settings" }).waitFor();
  await plain.locator("details.menu summary").click();
  await plain.getByRole("button", { name: "Sign out" }).click();
  await plain.getByText("You are signed out.").waitFor();
  await plain.context().close();
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
receiver.close();

await step("no page broke the Content-Security-Policy", null, async () => {
  assert.deepEqual(cspViolations, []);
});

await step("every page was laid out at 1280, 1920 and 390 px", null, async () => {
  const expected = [
    "sign-in-error", "sign-in", "key-new", "key-new-error", "key-created", "user-settings", "rename", "delete-confirmation", "delete-selected",
    "org-keys", "key-report", "audit-log", "users", "teams", "org-settings", "user-invited", "rotate", "rotation",
    "webhook-secret", "webhooks", "deliveries", "webhook-rotate-secret", "federation", "sign-in-sso", "sso-refused", "sso-providers", "sign-in-sso-required",
    "authorize", "team-service-accounts",
    "not-allowed", "revoke-exposed", "not-found", "invite",
  ];
  assert.deepEqual(expected.filter((name) => !laidOut.has(name)), []);
});

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
