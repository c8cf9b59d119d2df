// Browser checks of the alerts, monitors, inbox and two-factor pages, run by
// test/integration/test_web_alerts.py against a real ledgerd (serving web/dist, evaluating alert
// rules every second) with PostgreSQL and Redis:
//
//   node web/tests/alerts.mjs URL SCREENSHOT_DIR
//
// Checks, in order: sign up; two-factor set up from the account page (QR code drawn, the secret
// read from the page, a TOTP computed here per RFC 6238 with node's crypto), backup codes shown;
// sign out and sign in again with a code; an in_app connector created and tested (the bell counts
// it); an alert rule created; logs that breach it make it fire, and the bell's count rises without
// a reload (the stream's `notification` event); history shows the firing, ack works; a heartbeat
// monitor created, its ping URL shown and pinged, the monitor up with an uptime bar; the inbox
// marks all read. Prints "ok <check>" per check, fails on any CSP violation or page error, and
// writes every new page in both themes to SCREENSHOT_DIR.
import { createRequire } from "node:module";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node alerts.mjs URL SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const MULT = Number(process.env.LEDGER_TIME_MULT ?? "1") || 1;
const hardStop = setTimeout(() => {
  console.error("alerts.mjs: gave up after 240 s");
  process.exit(3);
}, 240000 * MULT);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}
function ok(what) {
  console.log(`ok ${what}`);
}

// ---- RFC 6238 (HMAC-SHA1, 6 digits, 30 s) ----
function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`bad base32 character ${ch}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}
function totp(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac("sha1", base32(secret)).update(msg).digest();
  const off = h[h.length - 1] & 15;
  const n = (h.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, "0");
}
const stepNow = () => Math.floor(Date.now() / 30000);

const run = randomBytes(4).toString("hex");
const email = `alerts-${run}@example.com`;
const password = `Pw-${run}-Long9`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let page;
let step = "start";
const cspViolations = [];
const pageErrors = [];

async function capture(name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await sleep(150);
    await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

async function bellCount() {
  const el = await page.$('[data-testid="inbox-count"]');
  return el ? Number(await el.textContent()) : 0;
}

async function waitFor(fn, what, seconds = 30) {
  const until = Date.now() + seconds * 1000 * MULT;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await sleep(250);
  }
}

try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  context.setDefaultTimeout(20000 * MULT);
  page = await context.newPage();
  page.on("console", (m) => /Content Security Policy/.test(m.text()) && cspViolations.push(m.text()));
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("dialog", (d) => void d.accept());

  // ---- sign up, then a project and a key through the API (the pages under test come after) ----
  step = "sign up";
  await page.goto(`${base}/register`);
  await page.fill("#f-name", "Alerts E2E");
  await page.fill("#f-email", email);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/projects/);
  const login = await context.request.post(`${base}/api/v1/accounts/login`, { data: { email, password } });
  check(login.ok(), `login answered ${login.status()}`);
  const auth = { Authorization: `Bearer ${(await login.json()).access_token}` };
  const proj = await context.request.post(`${base}/api/v1/projects`, { headers: auth, data: { name: `Alerts ${run}`, slug: `alerts-${run}` } });
  check(proj.ok(), `project answered ${proj.status()}`);
  const projectId = (await proj.json()).project_id;
  const keyRes = await context.request.post(`${base}/api/v1/projects/${projectId}/api-keys`, { headers: auth, data: { name: "e2e" } });
  check(keyRes.ok(), `key answered ${keyRes.status()} ${await keyRes.text()}`);
  const apiKey = (await keyRes.json()).full_key;
  ok("sign up");

  // ---- two-factor: set up, verify, backup codes ----
  step = "2fa setup";
  await page.goto(`${base}/account?project=${projectId}`);
  await page.waitForSelector('[data-testid="tfa-status"]');
  await capture("account");
  await page.click("text=Set up two-factor sign-in");
  await page.waitForSelector('[data-testid="qr"] svg path');
  const secret = (await page.textContent('[data-testid="tfa-secret"]')).trim();
  check(/^[A-Z2-7]{16,}$/.test(secret), `secret ${secret}`);
  await capture("account-2fa-setup");
  const verifyStep = stepNow();
  await page.fill("#f-code-from-the-app", totp(secret, verifyStep));
  await page.click("text=Turn on");
  await page.waitForSelector('[data-testid="backup-codes"] li');
  const codes = await page.$$eval('[data-testid="backup-codes"] li', (els) => els.map((e) => e.textContent));
  check(codes.length === 10, `backup codes ${codes.length}`);
  await capture("account-2fa-backup-codes");
  ok("2fa enabled");

  // ---- sign out, sign in with a code ----
  step = "2fa sign in";
  await page.click('summary[aria-label="Account menu"]');
  await page.click("text=Sign out");
  await page.waitForURL(/\/signin/);
  await page.fill("#f-email", email);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("#f-two-factor-code");
  await capture("signin-2fa");
  // A code is accepted once per step: wait for a step after the one used to verify.
  while (stepNow() <= verifyStep) await sleep(500);
  await page.fill("#f-two-factor-code", totp(secret, stepNow()));
  await page.click("button[type=submit]");
  await page.waitForSelector('[data-testid="inbox-bell"]');
  ok("2fa sign in");

  // ---- connector and its test: the bell counts the in-app notification ----
  step = "connector";
  await page.goto(`${base}/alerts?project=${projectId}`);
  await page.waitForSelector("text=No rules in this project.");
  check((await bellCount()) === 0, "bell starts at 0");
  await page.fill("#f-connector-name", "inbox");
  await page.click('form[aria-label="New connector"] button[type=submit]');
  await page.waitForSelector('[data-testid="connector-row"]');
  await page.click('button[aria-label="Test connector inbox"]');
  await page.waitForSelector("text=Test of “inbox” delivered.");
  await waitFor(async () => (await bellCount()) === 1, "bell at 1 after the connector test");
  ok("connector");

  // ---- a rule that fires: the bell rises through the stream, no reload ----
  step = "rule";
  await page.click("text=New rule");
  await page.fill("#f-name", "errors");
  await page.selectOption("#f-metric", "error_count");
  await page.selectOption("#f-comparator", "gte");
  await page.fill("#f-threshold", "2");
  await page.fill("#f-window-s-", "60");
  await page.fill("#f-cool-down-s-", "0");
  await page.check('form[aria-label="New rule"] input[name=connector]');
  await page.click("text=Create rule");
  await page.waitForSelector('[data-testid="rule-row"]');
  ok("rule created");
  const logs = Array.from({ length: 3 }, (_, i) => ({ timestamp: new Date().toISOString(), level: "error", log_type: "logger", message: `boom ${i}` }));
  const ing = await context.request.post(`${base}/api/v1/ingest/batch`, { headers: { "X-API-Key": apiKey }, data: { logs } });
  check(ing.status() === 202, `ingest answered ${ing.status()} ${await ing.text()}`);
  await waitFor(async () => (await bellCount()) >= 2, "bell counts the firing", 60);
  ok("bell count from stream");
  step = "history";
  await waitFor(async () => {
    await page.reload();
    await page.waitForSelector('[data-testid="rule-row"]');
    return page.$('[data-testid="history-row"]');
  }, "history shows the firing");
  await page.click('[data-testid="history-row"] >> text=Ack');
  await page.waitForSelector('[data-testid="history-row"] >> text=acknowledged');
  await capture("alerts");
  ok("history ack");

  // ---- heartbeat monitor: ping URL, ping, up ----
  step = "monitor";
  await page.goto(`${base}/monitors?project=${projectId}`);
  await page.waitForSelector("text=No monitors in this project.");
  await page.fill("#f-monitor-name", "nightly job");
  await page.click("text=Create monitor");
  await page.waitForSelector('[data-testid="ping-url"]');
  const pingUrl = (await page.textContent('[data-testid="ping-url"] code')).replace(/^curl -fsS -X POST /, "").trim();
  check(/\/api\/v1\/monitors\/[0-9a-f]{32}\/ping$/.test(pingUrl), `ping URL ${pingUrl}`);
  const ping = await context.request.post(pingUrl);
  check(ping.status() === 204, `ping answered ${ping.status()}`);
  await page.click("text=Refresh");
  await waitFor(async () => (await page.textContent('[data-testid="monitor-state"]')).trim() === "up", "monitor up");
  ok("heartbeat up");
  // An HTTP monitor of ledgerd's own /health: its checks draw the uptime bars.
  await page.selectOption("#f-monitor-kind", "http");
  await page.fill("#f-monitor-name", "health");
  await page.fill("#f-target-url", `${base}/health`);
  await page.fill("#f-check-every-s-", "10");
  await page.click("text=Create monitor");
  await waitFor(async () => {
    await page.click("text=Refresh");
    await sleep(500);
    return page.$('[data-testid="uptime-bars"] .uptime-bar');
  }, "uptime bars of the http monitor", 60);
  await capture("monitors");
  ok("uptime bars");

  // ---- inbox ----
  step = "inbox";
  await page.click('[data-testid="inbox-bell"]');
  await page.waitForURL(/\/inbox/);
  await page.waitForSelector('[data-testid="inbox-row"]');
  await capture("inbox");
  await page.click("text=Mark all read");
  await waitFor(async () => (await bellCount()) === 0, "bell back to 0");
  ok("inbox read all");

  check(cspViolations.length === 0, `CSP violations: ${cspViolations.join(" | ")}`);
  check(pageErrors.length === 0, `page errors: ${pageErrors.join(" | ")}`);
  ok("no csp violations or page errors");
} catch (e) {
  console.error(`FAILED at ${step}: ${e && e.stack ? e.stack : e}`);
  if (cspViolations.length) console.error(`CSP: ${cspViolations.join(" | ")}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(" | ")}`);
  if (page) await page.screenshot({ path: join(shots, "alerts-failure.png"), fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
clearTimeout(hardStop);
