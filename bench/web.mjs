// bench/web.mjs: the browser half of bench/web.sh. Drives Debian's chromium (headless, through
// playwright-core from web/node_modules) against a ledgerd that serves web/dist and holds the
// bench data set, and prints one "name value" line per figure (bench/web.sh reports them).
//
//   node bench/web.mjs URL EMAIL PASSWORD PROJECT_ID API_KEY
//
// Environment: CHROMIUM (default /usr/bin/chromium), BENCH_WEB_RUNS (first paint runs, 5),
// BENCH_WEB_TAIL_POSTS (100), BENCH_WEB_SCROLL_ROWS (50000), BENCH_WEB_SCROLL_PASSES (3), BENCH_WEB_DEADLINE_S (900: the whole
// script gives up past it). Every wait is bounded; loopback only.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "web", "package.json"));
const { chromium } = require("playwright-core");

const [url, email, password, projectId, apiKey] = process.argv.slice(2);
if (!apiKey) {
  console.error("usage: node bench/web.mjs URL EMAIL PASSWORD PROJECT_ID API_KEY");
  process.exit(2);
}
const RUNS = Number(process.env.BENCH_WEB_RUNS ?? 5);
const POSTS = Number(process.env.BENCH_WEB_TAIL_POSTS ?? 100);
const SCROLL_ROWS = Number(process.env.BENCH_WEB_SCROLL_ROWS ?? 50000);
const SCROLL_PASSES = Number(process.env.BENCH_WEB_SCROLL_PASSES ?? 3);
const DEADLINE_MS = Number(process.env.BENCH_WEB_DEADLINE_S ?? 900) * 1000;
const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`bench/web.mjs: gave up after ${DEADLINE_MS / 1000}s`);
  process.exit(3);
}, DEADLINE_MS);

const say = (name, value) => console.log(`${name} ${value}`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ms = (x) => x.toFixed(1);

// In every page, before the app runs: the time the first log row enters the DOM, and every long
// task (> 50 ms, Long Tasks API) with its start, kept in window.__bench.
const INIT = () => {
  const b = (window.__bench = { firstRow: null, longTasks: [] });
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-testid="log-row"]')) {
      b.firstRow = performance.now();
      // The frame that paints it.
      requestAnimationFrame(() => (b.firstRowPaint = performance.now()));
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch {
    b.longTasks = null;
  }
};

// One pass through the loaded rows, top to bottom at `step` px a frame (4200 = 150 rows: a fling),
// over at most `span` px (runs in the page).
const SCROLL_PASS = async ({ step, span } = { step: 4200, span: Infinity }) => {
  const list = document.querySelector('[data-testid="log-list"]');
  list.scrollTop = 0;
  await new Promise((r) => setTimeout(r, 500));
  const from = performance.now();
  const frames = [];
  let maxRows = 0;
  // The number of frames is fixed up front: reading scroll positions after each write would
  // force a layout per frame that a user's scrolling does not cause.
  const steps = Math.ceil(Math.min(span, list.scrollHeight - list.clientHeight) / step);
  await new Promise((resolve) => {
    let prev = performance.now();
    let n = 0;
    const step = () => {
      const now = performance.now();
      frames.push(now - prev);
      prev = now;
      if (n % 20 === 0) maxRows = Math.max(maxRows, list.querySelectorAll('[data-testid="log-row"]').length);
      if (n++ >= steps) return resolve();
      list.scrollTop = n * step; // 4200: 150 rows a frame, a fast fling, 50,000 rows in ~330 frames
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  await new Promise((r) => setTimeout(r, 300));
  const tasks = (window.__bench.longTasks ?? []).filter((t) => t.start >= from);
  return {
    seconds: (performance.now() - from) / 1000,
    frames: frames.length,
    maxFrame: Math.max(...frames.slice(1)),
    p95Frame: frames.slice(1).sort((a, b) => a - b)[Math.floor(frames.length * 0.95)],
    longTasks: tasks.length,
    longest: Math.max(0, ...tasks.map((t) => t.duration)),
    maxRows,
    supported: window.__bench.longTasks !== null,
  };
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(60000);
  await context.addInitScript(INIT);
  // Sign in through the API from the browser context: the refresh cookie lands in the context,
  // and every page load then starts the way a returning user's does (silent refresh).
  const login = await context.request.post(`${url}/api/v1/accounts/login`, { data: { email, password } });
  if (!login.ok()) throw new Error(`login answered ${login.status()}`);

  // ---- 1. first paint with rows (median of RUNS) and JS shipped on the first load ----
  const explorerUrl = `${url}/logs?project=${projectId}&range=24h`;
  const paints = [];
  const phases = {};
  let jsWire = 0;
  let jsFiles = 0;
  for (let run = 0; run < RUNS; run++) {
    const page = await context.newPage();
    const scripts = [];
    if (run === 0) page.on("response", (r) => r.request().resourceType() === "script" && scripts.push(r));
    await page.goto(explorerUrl, { waitUntil: "commit" });
    await page.waitForFunction(() => window.__bench && window.__bench.firstRowPaint, null, { timeout: 30000 });
    const t = await page.evaluate(() => window.__bench.firstRowPaint);
    paints.push(t);
    // Where the time went: when the script, the session refresh and the first page of logs had
    // arrived (Resource Timing, ms since navigation start).
    const marks = await page.evaluate(() => {
      const end = (re) => performance.getEntriesByType("resource").find((e) => re.test(e.name))?.responseEnd ?? NaN;
      return { js: end(/\/assets\/.*\.js$/), refresh: end(/\/accounts\/refresh/), logs: end(/\/api\/v1\/logs(\?|\/search)/) };
    });
    for (const k of Object.keys(marks)) (phases[k] ??= []).push(marks[k]);
    if (run === 0) {
      await page.waitForLoadState("load");
      for (const r of scripts) {
        const sizes = await r.request().sizes();
        jsWire += sizes.responseBodySize; // bytes on the wire, i.e. gzip-encoded when served so
        jsFiles++;
        if (r.headers()["content-encoding"] !== "gzip") say("warning_js_not_gzipped", r.url());
      }
    }
    await page.close();
  }
  say("first_paint_rows_ms_runs", paints.map(ms).join(","));
  say("first_paint_rows_ms_median", ms(median(paints)));
  say("first_paint_phases_ms_median", Object.entries(phases).map(([k, v]) => `${k}=${ms(median(v))}`).join(","));
  say("js_first_load_bytes_wire", jsWire);
  say("js_first_load_files", jsFiles);

  // ---- 2. live tail: a log posted to ingest appears in the open explorer (p95 over POSTS) ----
  {
    const page = await context.newPage();
    await page.goto(`${url}/logs?project=${projectId}&range=15m`);
    await page.waitForSelector('[data-testid="log-list"]');
    await page.click('button[aria-label="Live tail"]');
    await page.waitForFunction(() => /Live/.test(document.querySelector('[data-testid="tail-status"]')?.textContent ?? ""), null, {
      timeout: 20000,
    });
    const nonce = `webbench${Date.now().toString(36)}`;
    const lat = [];
    let missed = 0;
    for (let i = 0; i < POSTS; i++) {
      const r = await page.evaluate(
        async ({ key, text }) => {
          const seen = new Promise((resolve) => {
            const check = () => {
              for (const el of document.querySelectorAll('[data-testid="log-row"] .log-msg')) {
                if (el.textContent === text) return true;
              }
              return false;
            };
            const obs = new MutationObserver(() => {
              if (check()) {
                obs.disconnect();
                resolve(performance.now());
              }
            });
            obs.observe(document.querySelector('[data-testid="log-list"]'), { childList: true, subtree: true, characterData: true });
            setTimeout(() => {
              obs.disconnect();
              resolve(null);
            }, 5000);
          });
          const t0 = performance.now();
          const res = await fetch("/api/v1/ingest/single", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-API-Key": key },
            body: JSON.stringify({ timestamp: new Date().toISOString(), level: "info", log_type: "logger", message: text }),
          });
          if (res.status !== 202) return { error: res.status };
          const t1 = await seen;
          return { ms: t1 === null ? null : t1 - t0 };
        },
        { key: apiKey, text: `${nonce} post ${i}` },
      );
      if (r.error) throw new Error(`ingest answered ${r.error}`);
      if (r.ms === null) missed++;
      else lat.push(r.ms);
    }
    if (lat.length) {
      say("tail_latency_ms_p50", ms(pct(lat, 50)));
      say("tail_latency_ms_p95", ms(pct(lat, 95)));
      say("tail_latency_ms_max", ms(Math.max(...lat)));
    }
    say("tail_posts", POSTS);
    say("tail_not_seen_within_5s", missed);
    const dropped = await page.evaluate(() => document.querySelector('[data-testid="tail-dropped"]')?.textContent ?? "0 dropped");
    say("tail_dropped_marker", JSON.stringify(dropped));
    await page.close();
  }

  // ---- 3. load SCROLL_ROWS rows by scrolling, then scroll through all of them ----
  {
    const page = await context.newPage();
    await page.goto(`${url}/logs?project=${projectId}&range=30d`);
    await page.waitForSelector('[data-testid="log-row"]');
    const tLoad = Date.now();
    const loaded = await page.evaluate(async (want) => {
      const list = document.querySelector('[data-testid="log-list"]');
      const n = () => Number(list.dataset.loaded);
      const until = Date.now() + 600000;
      let last = -1;
      let still = 0;
      while (n() < want && Date.now() < until) {
        list.scrollTop = list.scrollHeight;
        await new Promise((r) => setTimeout(r, 50));
        if (n() === last) {
          if (++still > 400 && list.getAttribute("aria-busy") !== "true") break; // no more pages
        } else still = 0;
        last = n();
      }
      return n();
    }, SCROLL_ROWS);
    say("scroll_rows_loaded", loaded);
    say("scroll_load_seconds", ((Date.now() - tLoad) / 1000).toFixed(1));
    const loadTasks = await page.evaluate(() => window.__bench.longTasks);
    if (loadTasks) say("load_longest_task_ms", ms(Math.max(0, ...loadTasks.map((t) => t.duration))));

    const passes = [];
    for (let pass = 0; pass < SCROLL_PASSES; pass++) {
      const r = await page.evaluate(SCROLL_PASS);
      say(`scroll_pass${pass + 1}`, `${r.seconds.toFixed(1)}s ${r.frames} frames p95 ${ms(r.p95Frame)} ms max ${ms(r.maxFrame)} ms, long tasks ${r.supported ? r.longTasks : "unsupported"}, longest ${r.longTasks ? ms(r.longest) : "none over 50"} ms, at most ${r.maxRows} rows in the DOM`);

      passes.push(r);
    }
    // Reading speed: 15 rows a frame (less than a screen, so every row is drawn with its text)
    // over the first 6,000 rows.
    {
      const r = await page.evaluate(SCROLL_PASS, { step: 420, span: 6000 * 28 });
      say("scroll_read_pass", `${r.seconds.toFixed(1)}s ${r.frames} frames p95 ${ms(r.p95Frame)} ms max ${ms(r.maxFrame)} ms, long tasks ${r.supported ? r.longTasks : "unsupported"}, longest ${r.longTasks ? ms(r.longest) : "none over 50"} ms`);
    }
    const longest = passes.map((r) => (r.longTasks ? r.longest : 0));
    say("scroll_passes", passes.length);
    say("scroll_longest_task_ms_per_pass", longest.map(ms).join(","));
    say("scroll_longest_task_ms_median", ms(median(longest)));
    say("scroll_long_tasks_per_pass", passes.map((r) => r.longTasks).join(","));
    say("scroll_frame_ms_p95_per_pass", passes.map((r) => ms(r.p95Frame)).join(","));
    say("scroll_max_rows_in_dom", Math.max(...passes.map((r) => r.maxRows)));

    // One more pass under a trace: the main thread's tasks in wall time and in CPU time (thread
    // time). On a shared machine the difference is time the renderer waited for a core.
    const cdp = await context.newCDPSession(page);
    const events = [];
    cdp.on("Tracing.dataCollected", (d) => events.push(...d.value));
    const complete = new Promise((r) => cdp.once("Tracing.tracingComplete", r));
    await cdp.send("Tracing.start", {
      categories: "devtools.timeline,disabled-by-default-devtools.timeline",
      transferMode: "ReportEvents",
    });
    await page.evaluate(SCROLL_PASS);
    await cdp.send("Tracing.end");
    await complete;
    const tasks = events.filter((e) => e.ph === "X" && e.name === "RunTask" && e.dur > 0);
    const busy = {};
    for (const t of tasks) busy[`${t.pid}:${t.tid}`] = (busy[`${t.pid}:${t.tid}`] ?? 0) + t.dur;
    const main = Object.entries(busy).sort((x, y) => y[1] - x[1])[0]?.[0];
    const mt = tasks.filter((t) => `${t.pid}:${t.tid}` === main);
    if (mt.length) {
      const longestWall = Math.max(...mt.map((t) => t.dur)) / 1000;
      const longestCpu = Math.max(...mt.map((t) => t.tdur ?? 0)) / 1000;
      say("scroll_traced_longest_task_wall_ms", ms(longestWall));
      say("scroll_traced_longest_task_cpu_ms", ms(longestCpu));
      say("scroll_traced_tasks_over_50ms_wall", mt.filter((t) => t.dur > 50000).length);
      say("scroll_traced_tasks_over_50ms_cpu", mt.filter((t) => (t.tdur ?? 0) > 50000).length);
      // Where the main thread's time goes: wall/CPU ms per kind of work over the pass, and inside the
      // longest task (events nest, e.g. a FunctionCall holds its GC, so the columns overlap).
      const KINDS = ["FireAnimationFrame", "EventDispatch", "FunctionCall", "RunMicrotasks", "TimerFire",
        "UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize", "Commit", "HitTest",
        "MinorGC", "MajorGC", "V8.GC_SCAVENGER", "V8.GC_MARK_COMPACTOR", "V8.GC_MC_INCREMENTAL"];
      const [mpid, mtid] = main.split(":").map(Number);
      const onMain = events.filter((e) => e.ph === "X" && e.pid === mpid && e.tid === mtid && KINDS.includes(e.name));
      const sum = (evs) => { // "Kind=wall/cpu" in ms
        const o = {};
        for (const e of evs) {
          const v = (o[e.name] ??= [0, 0]);
          v[0] += (e.dur ?? 0) / 1000;
          v[1] += (e.tdur ?? 0) / 1000;
        }
        return Object.entries(o).sort((x, y) => y[1][0] - x[1][0]).map(([k, v]) => `${k}=${ms(v[0])}/${ms(v[1])}`).join(" ");
      };
      say("scroll_traced_ms_by_kind", sum(onMain));
      const top = mt.reduce((x, y) => (y.dur > x.dur ? y : x));
      say("scroll_traced_longest_task_by_kind", sum(onMain.filter((e) => e.ts >= top.ts && e.ts < top.ts + top.dur)));
    }
    await page.close();
  }
  say("browser_seconds", ((Date.now() - started) / 1000).toFixed(1));
} finally {
  clearTimeout(deadline);
  await browser.close();
}
