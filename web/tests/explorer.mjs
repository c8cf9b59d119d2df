// Browser checks of the log explorer, run by test/integration/test_web_explorer.py against a real
// ledgerd (serving web/dist) with PostgreSQL and Redis:
//
//   node web/tests/explorer.mjs URL EMAIL PASSWORD PROJECT_ID API_KEY LOADED_LOGS SCREENSHOT_DIR
//
// The project holds LOADED_LOGS logs (thousands) when this starts. Checks, in order: rows visible;
// virtualisation (all LOADED_LOGS loaded by scrolling, few rows in the DOM); facets and histogram;
// the server's 400 with its position under the query box; search and facet filters round-trip
// through the URL (reload restores them); a row opens every field and its link opens that log;
// dragging across the histogram zooms; live tail shows a log posted to ingest. Prints "ok <check>" per check and exits non-zero on the
// first failure (with a screenshot of the page in SCREENSHOT_DIR).
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [url, email, password, projectId, apiKey, loadedArg, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node explorer.mjs URL EMAIL PASSWORD PROJECT_ID API_KEY LOADED_LOGS SCREENSHOT_DIR");
  process.exit(2);
}
const LOADED = Number(loadedArg);
mkdirSync(shots, { recursive: true });
const hardStop = setTimeout(() => {
  console.error("explorer.mjs: gave up after 240 s");
  process.exit(3);
}, 240000);

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let page;
let step = "start";
const cspViolations = [];
const pageErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 850 } });
  context.setDefaultTimeout(20000);
  const login = await context.request.post(`${url}/api/v1/accounts/login`, { data: { email, password } });
  check(login.ok(), `login answered ${login.status()}`);
  page = await context.newPage();
  page.on("console", (m) => /Content Security Policy/.test(m.text()) && cspViolations.push(m.text()));
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const list = '[data-testid="log-list"]';
  const rows = '[data-testid="log-row"]';

  // ---- rows visible ----
  step = "rows visible";
  await page.goto(`${url}/logs?project=${projectId}&range=24h`);
  await page.waitForSelector(rows);
  console.log("ok rows visible");
  await page.screenshot({ path: join(shots, "explorer.png") });

  // ---- virtualisation: every log loaded by scrolling, only a window of rows in the DOM ----
  step = "virtualisation";
  const v = await page.evaluate(
    async ({ list, rows, want }) => {
      const el = document.querySelector(list);
      const until = Date.now() + 60000;
      let maxDom = 0;
      while (Number(el.dataset.loaded) < want && Date.now() < until) {
        el.scrollTop = el.scrollHeight;
        await new Promise((r) => setTimeout(r, 100));
        maxDom = Math.max(maxDom, document.querySelectorAll(rows).length);
      }
      el.scrollTop = Math.floor(el.scrollHeight / 2);
      await new Promise((r) => setTimeout(r, 300));
      maxDom = Math.max(maxDom, document.querySelectorAll(rows).length);
      const mid = [...document.querySelectorAll(rows)].map((r) => Number(r.dataset.index));
      return { loaded: Number(el.dataset.loaded), maxDom, midFirst: Math.min(...mid), spacer: el.scrollHeight };
    },
    { list, rows, want: LOADED },
  );
  check(v.loaded >= LOADED, `loaded ${v.loaded} of ${LOADED} rows by scrolling`);
  check(v.maxDom > 0 && v.maxDom <= 120, `at most 120 rows in the DOM with ${v.loaded} loaded (saw ${v.maxDom})`);
  check(v.midFirst > LOADED / 4, `the middle of the list shows rows from the middle (first index ${v.midFirst})`);
  console.log(`ok virtualisation (${v.loaded} loaded, at most ${v.maxDom} rows in the DOM)`);

  // ---- facets with counts, histogram ----
  step = "facets";
  await page.waitForFunction(() => {
    const b = document.querySelector('[data-testid="facets"] [data-facet="level:error"] .facet-count');
    return b && /^[0-9]/.test(b.textContent);
  });
  const errCount = await page.textContent('[data-testid="facets"] [data-facet="level:error"] .facet-count');
  check(Number(errCount) > 0, `error facet count ${errCount}`);
  step = "histogram";
  await page.waitForSelector('[data-testid="histogram"] canvas');
  console.log(`ok facets (error: ${errCount}) and histogram`);

  // ---- the server's 400 with its position ----
  step = "query error";
  await page.fill('input[aria-label="Query"]', "level:error AND (timeout");
  await page.press('input[aria-label="Query"]', "Enter");
  await page.waitForSelector('[data-testid="query-error"]');
  const qerr = await page.textContent('[data-testid="query-error"]');
  check(/Invalid query at position 17: unclosed '\('/.test(qerr), `query error text: ${qerr}`);
  check((await page.getAttribute('input[aria-label="Query"]', "aria-invalid")) === "true", "query box marked invalid");
  console.log("ok 400 position shown");

  // ---- filters round-trip through the URL ----
  step = "url round trip";
  await page.fill('input[aria-label="Query"]', "worker");
  await page.press('input[aria-label="Query"]', "Enter");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("q") === "worker");
  await page.click('[data-testid="facets"] [data-facet="level:error"]');
  await page.waitForFunction(() => new URLSearchParams(location.search).get("level") === "error");
  await page.selectOption('select[aria-label="Time range"]', "7d");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("range") === "7d");
  // the rows of the earlier state can still be on screen while the new page loads: wait for the
  // filtered ones (the check below says what was there if they never come)
  await page
    .waitForFunction(
      (sel) => {
        const els = [...document.querySelectorAll(`${sel} .level-badge`)];
        return els.length > 0 && els.every((e) => e.textContent === "error");
      },
      rows,
    )
    .catch(() => {});
  const levels = await page.$$eval(`${rows} .level-badge`, (els) => [...new Set(els.map((e) => e.textContent))]);
  check(levels.length === 1 && levels[0] === "error", `only error rows with the facet on (saw ${levels})`);
  const filtered = page.url();
  await page.reload();
  await page.waitForSelector(rows);
  check((await page.inputValue('input[aria-label="Query"]')) === "worker", "query restored from the URL");
  check(
    (await page.getAttribute('[data-testid="facets"] [data-facet="level:error"]', "aria-pressed")) === "true",
    "level facet restored from the URL",
  );
  check((await page.inputValue('select[aria-label="Time range"]')) === "7d", "range restored from the URL");
  check(page.url() === filtered, "reload keeps the URL");
  await page.goBack();
  await page.waitForFunction(() => new URLSearchParams(location.search).get("range") === null);
  check((await page.inputValue('select[aria-label="Time range"]')) === "24h", "back goes to the previous range");
  console.log("ok URL round trip");

  // ---- a row opens every field; its link opens that log ----
  step = "detail";
  await page.goto(`${url}/logs?project=${projectId}&type=exception`);
  await page.waitForSelector(rows);
  const id = await page.getAttribute(`${rows} >> nth=0`, "data-id");
  await page.click(`${rows} >> nth=0`);
  await page.waitForFunction((id) => new URLSearchParams(location.search).get("log") === id, id);
  await page.waitForSelector('[data-testid="log-detail"] [data-testid="attributes-json"]');
  const attrs = JSON.parse(await page.textContent('[data-testid="attributes-json"]'));
  check(typeof attrs === "object" && attrs !== null, "attributes are formatted JSON");
  check(/Traceback/.test(await page.textContent('[data-testid="stack-trace"]')), "stack trace shown");
  await page.screenshot({ path: join(shots, "explorer-detail.png") });
  const link = new URL(await page.getAttribute('[data-testid="log-detail"] a', "href"), url);
  check(link.searchParams.get("log") === id, `the permalink names the log (${link})`);
  // Opened where the list does not hold it (a query matching nothing), the log comes from
  // GET /api/v1/logs/{id}.
  link.searchParams.set("q", "nothingmatchesthisword");
  const fresh = await context.newPage();
  const fetched = fresh.waitForResponse((r) => r.url().includes(`/api/v1/logs/${id}?`) && r.status() === 200);
  await fresh.goto(link.toString());
  await fetched;
  await fresh.waitForFunction(
    (id) => document.querySelector('[data-testid="log-detail"] h2')?.textContent === `Log ${id}`,
    id,
  );
  await fresh.waitForSelector('[data-testid="no-logs"]');
  await fresh.close();
  console.log("ok detail and link");

  // ---- drag across the histogram: the range becomes from/to ----
  step = "zoom";
  await page.goto(`${url}/logs?project=${projectId}&range=1h`);
  await page.waitForSelector('[data-testid="histogram"] canvas');
  const over = await page.locator('[data-testid="histogram"] .u-over').boundingBox();
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.7, over.y + over.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => {
    const p = new URLSearchParams(location.search);
    return p.get("from") && p.get("to") && !p.get("range");
  });
  const zoom = new URL(page.url()).searchParams;
  const span = (Date.parse(zoom.get("to")) - Date.parse(zoom.get("from"))) / 60000;
  check(span > 10 && span < 40, `a drag over 40% of an hour selects about 24 minutes (got ${span.toFixed(1)})`);
  await page.waitForSelector(rows);
  console.log(`ok zoom (${span.toFixed(1)} min)`);

  // ---- live tail ----
  step = "live tail";
  await page.goto(`${url}/logs?project=${projectId}&range=15m`);
  await page.waitForSelector(list);
  const tail = 'button[aria-label="Live tail"]';
  check((await page.getAttribute(tail, "aria-pressed")) === "false", "tail off at first");
  await page.keyboard.press("t"); // the shell's shortcut
  await page.waitForFunction(
    (sel) => document.querySelector(sel)?.getAttribute("aria-pressed") === "true",
    tail,
  );
  await page.waitForFunction(() => /Live/.test(document.querySelector('[data-testid="tail-status"]')?.textContent ?? ""));
  const text = `explorer tail check ${Date.now()}`;
  const res = await page.request.post(`${url}/api/v1/ingest/single`, {
    headers: { "X-API-Key": apiKey },
    data: { timestamp: new Date().toISOString(), level: "warning", log_type: "logger", message: text },
  });
  check(res.status() === 202, `ingest answered ${res.status()}`);
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid="log-row"] .log-msg')].some((e) => e.textContent === t),
    text,
    { timeout: 15000 },
  );
  await page.click('button[aria-label="Pause live tail"]');
  await page.waitForFunction(() => /Paused/.test(document.querySelector('[data-testid="tail-status"]')?.textContent ?? ""));
  await page.screenshot({ path: join(shots, "explorer-tail.png") });
  console.log("ok live tail");

  check(cspViolations.length === 0, `no CSP violations (${cspViolations.join("; ")})`);
  check(pageErrors.length === 0, `no page errors (${pageErrors.join("; ")})`);
  console.log("explorer checks passed");
} catch (e) {
  console.error(`FAILED at ${step}: ${e.message}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join("; ")}`);
  if (page) await page.screenshot({ path: join(shots, "explorer-failure.png") }).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(hardStop);
  await browser.close();
}
