// The dashboard's user story in Debian's chromium (playwright-core), run by
// test/integration/test_web_e2e.py against a real ledgerd serving web/dist with PostgreSQL and Redis:
//
//   node web/tests/e2e.mjs URL SCREENSHOT_DIR
//
// register → create a project → create a key (the copied value is posted to ingest by this script
// over plain HTTP) → the logs show in the explorer and a search finds them → live tail shows a new
// log → an error log raises a toast → its error group is resolved, occurs again and shows as a
// regression → error states (server unreachable, 429 Retry-After, expired session) → sign out.
// Every page is captured in the light and dark themes into SCREENSHOT_DIR.
//
// Prints "ok <step>" per step and "skip <step>: <why>" for a part whose server side this ledgerd
// lacks; exits non-zero on the first failure (after a screenshot named failure-*.png).
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node e2e.mjs URL SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
// Slower servers (sanitizer builds) scale every wait, as the pytest suite does.
const MULT = Number(process.env.LDG_TEST_TIMEOUT_MULT ?? "1") || 1;
const hardStop = setTimeout(() => {
  console.error(`e2e.mjs: gave up after ${280 * MULT} s`);
  process.exit(3);
}, 280000 * MULT);

const run = Math.random().toString(36).slice(2, 8);
const email = `e2e-${run}@example.com`;
const password = "Corr3ctHorse";
let step = "start";

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}
function ok(what) {
  console.log(`ok ${what}`);
}
function skip(what, why) {
  console.log(`skip ${what}: ${why}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST logs with an API key over plain HTTP (not through the browser). */
async function ingest(key, logs) {
  const r = await fetch(`${base}/api/v1/ingest/batch`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ logs }),
  });
  const body = await r.json().catch(() => null);
  check(r.status === 202, `ingest answered ${r.status} ${JSON.stringify(body)}`);
  check(body.accepted === logs.length, `ingest accepted ${body.accepted} of ${logs.length}: ${JSON.stringify(body.errors)}`);
}

/** The status of a GET with an API key (404 `Not Found`: this ledgerd lacks the route). */
async function probe(path, key) {
  const r = await fetch(`${base}${path}`, { headers: { "X-API-Key": key } });
  await r.body?.cancel();
  return r.status;
}

const now = () => new Date().toISOString();
const STACK = [
  "Traceback (most recent call last):",
  '  File "/app/shop/checkout.py", line 88, in pay',
  "    charge(card, amount)",
  '  File "/app/shop/payments.py", line 41, in charge',
  "    raise PaymentDeclined(code)",
  "shop.payments.PaymentDeclined: card declined (code 51)",
].join("\n");
const errorLog = (n) => ({
  timestamp: now(),
  level: "error",
  log_type: "exception",
  message: `checkout failed #${n}`,
  error_type: "PaymentDeclined",
  error_message: "card declined (code 51)",
  stack_trace: STACK,
  platform: "python",
  attributes: { order: 1000 + n, run },
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let page;
const cspViolations = [];
const pageErrors = [];
const shotNames = [];

/** The current page in both themes. */
async function capture(name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await sleep(150); // charts rebuild on the theme change
    const file = `${name}-${scheme}.png`;
    await page.screenshot({ path: join(shots, file), fullPage: true });
    shotNames.push(file);
  }
  await page.emulateMedia({ colorScheme: "light" });
}

/** Reloads `url` until `selector` shows (the write path is asynchronous: queue, then storage). */
async function reloadUntil(url, selector, what, seconds = 30) {
  const until = Date.now() + seconds * 1000 * MULT;
  for (;;) {
    await page.goto(url);
    try {
      await page.waitForSelector(selector, { timeout: 3000 });
      return;
    } catch {
      if (Date.now() > until) throw new Error(`${what}: ${selector} did not appear within ${seconds} s`);
    }
  }
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  context.setDefaultTimeout(15000 * MULT);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  // ---- signed out: every page leads to sign-in ----
  step = "sign-in redirect";
  await page.goto(`${base}/errors`);
  await page.waitForURL(/\/signin\?next=%2Ferrors/);
  await page.waitForSelector("h1:text('Sign in to Ledger')");
  await capture("signin");
  ok("signed out, /errors leads to sign-in");

  // ---- register ----
  step = "register";
  await page.click("text=Create an account");
  await page.waitForURL(/\/register/);
  await page.fill("#f-name", "Ada E2E");
  await page.fill("#f-email", email);
  await page.fill("#f-password", password);
  await capture("register");
  await page.click("button[type=submit]");
  // A new account has no project: the app sends it to the projects page.
  await page.waitForURL(/\/projects/);
  await page.waitForSelector("text=Welcome!");
  ok("register");

  // ---- create a project ----
  step = "create project";
  await page.fill("#project-name", `Shop ${run}`);
  check((await page.inputValue("#project-slug")) === `shop-${run}`, "slug follows the name");
  await page.click("button:text('Create project')");
  await page.waitForURL(/\/keys\?project=\d+/);
  const projectId = Number(new URL(page.url()).searchParams.get("project"));
  check(projectId > 0, "project id in the URL");
  // The test runner may add hourly endpoint aggregates for this project (the analytics job makes
  // them only for full past hours); it reads this line.
  console.log(`project ${projectId}`);
  ok(`create project (${projectId})`);

  // ---- create a key; the copied value works with ingest ----
  step = "create key";
  await page.fill("#key-name", "e2e");
  await page.click("button:text('Create key')");
  const shown = (await page.textContent('[data-testid="full-key"]')).trim();
  check(/^ledger_[A-Za-z0-9_-]{43}$/.test(shown), `a full key is shown (${shown.slice(0, 12)}…)`);
  await page.click('button[aria-label="Copy key"]');
  await page.waitForSelector('button[aria-label="Copy key"]:text("Copied")');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === shown, "the clipboard holds the shown key");
  check((await page.textContent('[data-testid="first-log"] pre')).includes(copied), "the curl snippet uses the key");
  check((await page.textContent('[data-testid="first-log"] pre')).includes(`${base}/api/v1/ingest/batch`), "the snippet uses this server's URL");
  await capture("keys-created");
  const key = copied;
  const marker = `cart${run}`;
  await ingest(
    key,
    Array.from({ length: 5 }, (_, i) => ({ timestamp: now(), level: "info", log_type: "logger", message: `${marker} item ${i} added`, attributes: { i } })).concat([
      { timestamp: now(), level: "warning", log_type: "logger", message: "slow inventory lookup", attributes: { ms: 930 } },
    ]),
  );
  ok("create key, copy it, ingest with it");

  // ---- logs visible and searchable in the explorer ----
  step = "explorer";
  const logsUrl = `${base}/logs?project=${projectId}&range=1h`;
  await reloadUntil(logsUrl, `[data-testid="log-row"]:has-text("${marker} item 4")`, "ingested logs in the explorer");
  // `/` focuses the query box; typing then Enter searches.
  await page.locator("body").click({ position: { x: 5, y: 5 } });
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement?.getAttribute("aria-label") === "Query"), "/ focuses the query box");
  await page.keyboard.type(marker);
  await page.keyboard.press("Enter");
  await page.waitForFunction((m) => new URLSearchParams(location.search).get("q") === m, marker);
  await page.waitForFunction(
    (m) => {
      const rows = [...document.querySelectorAll('[data-testid="log-row"]')];
      return rows.length === 5 && rows.every((r) => r.textContent.includes(m));
    },
    marker,
    { timeout: 15000 * MULT },
  );
  await page.waitForSelector('[data-testid="facets"]');
  const histProbe = await probe(`/api/v1/logs/histogram?project_id=${projectId}&period=last1h`, key);
  if (histProbe === 200) {
    await page.waitForSelector('[data-testid="histogram"] canvas');
    await page.waitForFunction(() => /^[1-9]/.test(document.querySelector('[data-testid="facets"] [data-facet="level:info"] .facet-count')?.textContent ?? ""));
  } else {
    skip("histogram and facets", `this ledgerd answers ${histProbe} to /api/v1/logs/histogram`);
  }
  await capture("explorer-search");
  ok("logs visible and searchable");

  // ---- live tail ----
  step = "live tail";
  if ((await probe(`/api/v1/logs/tail?project_id=${projectId}`, key)) === 404) {
    skip("live tail", "this ledgerd has no /api/v1/logs/tail");
  } else {
    await page.goto(`${base}/logs?project=${projectId}&range=1h`);
    await page.waitForSelector('[data-testid="log-row"]');
    // `t` is the keyboard shortcut for the tail toggle.
    await page.locator("body").click({ position: { x: 5, y: 5 } });
    await page.keyboard.press("t");
    await page.waitForSelector('button[aria-label="Live tail"][aria-pressed="true"]');
    await page.waitForSelector('[data-testid="tail-status"].tail-live');
    // A tail sees the logs committed from at most [storage] tail_viewers_refresh_ms (1 s) after it
    // opened (docs/tail.md): a storage consumer may still hold a "no viewers" answer that old.
    await page.waitForTimeout(1500);
    const tailMarker = `tail${run}`;
    const t0 = Date.now();
    await ingest(key, [{ timestamp: now(), level: "info", log_type: "logger", message: `${tailMarker} arrived live` }]);
    await page.waitForSelector(`[data-testid="log-row"]:has-text("${tailMarker}")`, { timeout: 15000 * MULT });
    await capture("explorer-tail");
    await page.click('button[aria-label="Live tail"]');
    ok(`live tail shows a new log (${Date.now() - t0} ms)`);
  }

  // ---- an error log raises a toast ----
  step = "toast";
  await page.goto(`${base}/projects?project=${projectId}`);
  await page.waitForSelector('[data-testid="project-row"]');
  await page.waitForSelector('section.toasts[data-stream="connected"]', { state: "attached" });
  await sleep(300); // the server's channel subscription settles after `connected`
  await ingest(key, [errorLog(1)]);
  await page.waitForSelector('[data-testid="toast"]:has-text("PaymentDeclined")', { timeout: 15000 * MULT });
  await capture("toast");
  ok("an error log raises a toast");

  // ---- error groups: resolve, occur again, regression ----
  step = "error groups";
  const groupsProbe = await probe(`/api/v1/error-groups?project_id=${projectId}`, key);
  if (groupsProbe === 404) {
    skip("error groups", "this ledgerd has no /api/v1/error-groups");
  } else {
    // `g e` goes to the errors page.
    await page.locator("body").click({ position: { x: 5, y: 5 } });
    await page.keyboard.press("g");
    await page.keyboard.press("e");
    await page.waitForURL(/\/errors\?/);
    await reloadUntil(`${base}/errors?project=${projectId}`, '[data-testid="error-group"]:has-text("PaymentDeclined")', "error group listed");
    await page.waitForSelector('[data-testid="error-group"] svg.sparkline');
    await capture("errors");
    await page.click('[data-testid="error-group"] a:has-text("PaymentDeclined")');
    await page.waitForURL(/\/errors\/\d+/);
    await page.waitForSelector('[data-testid="stack-trace"]:has-text("PaymentDeclined")');
    await page.waitForSelector('[data-testid="error-detail"] .chart canvas');
    await capture("error-detail");
    await page.fill('input[placeholder="e.g. 1.4.2"]', "2.0.1");
    await page.click('button:text("Resolve")');
    await page.waitForSelector('[data-testid="group-status"] .badge-resolved');
    ok("error group listed, opened and resolved");
    const detailUrl = page.url();
    await ingest(key, [errorLog(2)]);
    // The regression comes as a live notification, and the group is unresolved again.
    await page.waitForSelector('[data-testid="toast"]:has-text("Regression")', { timeout: 15000 * MULT });
    await reloadUntil(detailUrl, '[data-testid="group-status"] [data-testid="regression-badge"]', "regression badge");
    check(await page.isVisible('[data-testid="group-status"] .badge-unresolved'), "a regression is unresolved");
    await capture("error-regression");
    await page.goto(`${base}/errors?project=${projectId}`);
    await page.waitForSelector('[data-testid="error-group"] [data-testid="regression-badge"]');
    ok("the resolved group occurred again and shows as a regression");
  }

  // ---- the other pages ----
  step = "pages";
  await page.goto(`${base}/projects?project=${projectId}`);
  await page.waitForSelector('[data-testid="project-row"] .usage small:has-text("/")');
  await page.click(`button[aria-label="Edit Shop ${run}"]`);
  await page.fill(`#retention-${projectId}`, "14");
  await page.click("button:text('Save')");
  await page.waitForSelector("text=Saved");
  await page.waitForSelector('[data-testid="project-row"] td:has-text("14 d")');
  await capture("projects");
  ok("projects: usage against quota, retention changed");

  await page.goto(`${base}/keys?project=${projectId}`);
  await page.waitForSelector('[data-testid="key-row"]');
  await page.fill("#key-name", "temporary");
  await page.click("button:text('Create key')");
  const temp = (await page.textContent('[data-testid="full-key"]')).trim();
  page.once("dialog", (d) => d.accept());
  await page.click('button[aria-label="Revoke key temporary"]');
  await page.waitForSelector('[data-testid="key-row"]:has-text("temporary") .badge-revoked');
  let refused = false;
  for (const until = Date.now() + 5000 * MULT; !refused && Date.now() < until; await sleep(200)) {
    const r = await fetch(`${base}/api/v1/ingest/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${temp}`, "Content-Type": "application/json" },
      body: JSON.stringify({ logs: [{ timestamp: now(), level: "info", message: "after revocation" }] }),
    });
    refused = r.status === 401;
  }
  check(refused, "a revoked key is refused by ingest");
  await capture("keys");
  ok("a key revoked in the dashboard stops working");
  await page.goto(`${base}/analytics?project=${projectId}`);
  await page.waitForSelector("h2:text('Endpoints')");
  await page.waitForSelector("#m-errors ~ .chart canvas");
  if (process.env.E2E_ENDPOINT_METRICS === "1") {
    await page.waitForSelector('select:has(option:text("GET /api/orders"))');
    check((await page.locator("section[aria-labelledby=m-endpoints] .chart canvas").count()) === 2, "latency and request rate charts");
    await page.selectOption('section[aria-labelledby=m-endpoints] select', "POST /api/checkout");
    await page.waitForFunction(() => new URLSearchParams(location.search).get("endpoint") === "POST /api/checkout");
    ok("endpoint latency and request rate charts");
  } else {
    skip("endpoint latency charts", "no endpoint aggregates were prepared");
  }
  await sleep(500);
  await capture("metrics");
  await page.goto(`${base}/notifications?project=${projectId}`);
  await page.waitForSelector("text=Live notifications on");
  await page.check(`fieldset:has-text("Shop ${run}") label:has-text("critical") input`);
  await page.click("button:text('Save preferences')");
  await page.waitForSelector("text=Saved");
  await capture("notifications");
  ok("notification preferences saved");
  await page.goto(`${base}/sessions?project=${projectId}`);
  await page.waitForSelector('[data-testid="session-row"]:has-text("this browser")');
  await capture("sessions");
  await page.locator("body").click({ position: { x: 5, y: 5 } });
  await page.keyboard.press("?");
  await page.waitForSelector("dialog[open] h2:text('Keyboard shortcuts')");
  await capture("help");
  await page.keyboard.press("Escape");
  await page.goto(`${base}/no/such/page?project=${projectId}`);
  await page.waitForSelector("h1:text('Page not found')");
  await capture("not-found");
  ok("keys, metrics, sessions, help and not-found pages render");

  // ---- error states ----
  step = "server unreachable";
  await page.goto(`${base}/keys?project=${projectId}`);
  await page.waitForSelector('[data-testid="key-row"]');
  await page.route("**/api/v1/**", (route) => route.abort("connectionrefused"));
  await page.fill("#key-name", "offline");
  await page.click("button:text('Create key')");
  await page.waitForSelector('[role="alert"]:has-text("Server unreachable")');
  await capture("unreachable");
  await page.unroute("**/api/v1/**");
  ok("server unreachable banner");

  step = "429";
  await page.route("**/api/v1/projects/*/api-keys", (route) =>
    route.request().method() === "POST"
      ? route.fulfill({
          status: 429,
          headers: { "Retry-After": "37", "Content-Type": "application/json" },
          body: JSON.stringify({ detail: "Per-minute rate limit exceeded. Current: 1001, Limit: 1000" }),
        })
      : route.continue(),
  );
  await page.fill("#key-name", "limited");
  await page.click("button:text('Create key')");
  await page.waitForSelector('.error:has-text("Try again in 37 s")');
  await page.unroute("**/api/v1/projects/*/api-keys");
  ok("429 shows its Retry-After");

  step = "expired session";
  // Another browser revokes every session: the next request's silent refresh fails too.
  const other = await fetch(`${base}/api/v1/accounts/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  }).then((r) => r.json());
  const revoked = await fetch(`${base}/api/v1/accounts/sessions/revoke-all`, {
    method: "POST",
    headers: { Authorization: `Bearer ${other.access_token}` },
  });
  check(revoked.status === 200, `revoke-all answered ${revoked.status}`);
  await page.click('a:text("Projects")');
  await page.waitForURL(/\/signin\?.*expired=1/);
  await page.waitForSelector("text=Your session expired");
  await capture("expired");
  ok("expired session leads to sign-in with a message");

  // ---- sign in again (back to where the user was), then sign out ----
  step = "sign out";
  await page.fill("#f-email", email);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/projects\?project=/);
  await page.click('summary[aria-label="Account menu"]');
  await page.click("button:text('Sign out')");
  await page.waitForURL(/\/signin\?signed_out=1/);
  await page.goto(`${base}/logs?project=${projectId}`);
  await page.waitForURL(/\/signin\?next=/);
  ok("sign in returns to the page, sign out ends the session");

  check(cspViolations.length === 0, `no CSP violations (${cspViolations.join(" | ")})`);
  check(pageErrors.length === 0, `no uncaught page errors (${pageErrors.join(" | ")})`);
  ok(`no CSP violations or page errors; ${shotNames.length} screenshots`);
} catch (e) {
  console.error(`FAILED at step "${step}": ${e && e.stack ? e.stack : e}`);
  if (cspViolations.length) console.error(`CSP violations: ${cspViolations.join("\n")}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join("\n")}`);
  if (page) {
    console.error(`at ${page.url()}`);
    await page.screenshot({ path: join(shots, `failure-${step.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(hardStop);
}
