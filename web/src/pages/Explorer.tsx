// The log explorer (/logs): query box, time range, facets, volume histogram, the virtualised list
// of logs loaded by cursor, the detail panel of one log, and the live tail. Every filter and the
// time range live in the URL (components/explorer/state.ts); this page only turns URL changes into
// requests and their answers into components.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { errorText, fetchFacets, fetchHistogram, fetchLog, fetchLogPage } from "../api/client";
import type { Facets as FacetsData, Histogram as HistogramData, LogEntry } from "../api/types";
import { href, navigate, useLocation } from "../state/url";
import { FirstLog } from "../components/FirstLog";
import { NeedProject } from "../components/NeedProject";
import { Facets } from "../components/explorer/Facets";
import { Histogram } from "../components/explorer/Histogram";
import { LogDetail } from "../components/explorer/LogDetail";
import { LogList } from "../components/explorer/LogList";
import { QueryBox } from "../components/explorer/QueryBox";
import { TailBar } from "../components/explorer/TailBar";
import { TimeRange } from "../components/explorer/TimeRange";
import {
  filterParams,
  parseState,
  searchQuery,
  stateToSearch,
  timeBounds,
  toggle,
  type ExplorerState,
  type TimeBounds,
} from "../components/explorer/state";
import { registerLiveTailToggle, TailStream, type TailSnapshot } from "../stream/tail";
import "../components/explorer/explorer.css";

const FIRST_PAGE = 100;
const NEXT_PAGE = 500;
const HISTOGRAM_BUCKETS = 60;

interface Rows {
  logs: LogEntry[];
  cursor: string | null;
  hasMore: boolean;
  loading: boolean;
  error: string | null;
}

const EMPTY_ROWS: Rows = { logs: [], cursor: null, hasMore: false, loading: true, error: null };

/** The part of the state that selects logs (everything but the open log). */
function selectionKey(s: ExplorerState): string {
  return stateToSearch({ ...s, log: null });
}

function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

export function Explorer() {
  const loc = useLocation();
  const state = useMemo(() => parseState(loc.params), [loc.params.toString()]);
  const key = selectionKey(state);

  const go = useCallback((next: ExplorerState, replace = false) => {
    const qs = stateToSearch(next);
    navigate(`/logs${qs ? `?${qs}` : ""}`, { replace });
  }, []);

  // ---- rows, histogram and facets of the current selection ----
  const [rows, setRows] = useState<Rows>(EMPTY_ROWS);
  const [histogram, setHistogram] = useState<HistogramData | null>(null);
  const [histLoading, setHistLoading] = useState(false);
  const [facets, setFacets] = useState<FacetsData | null>(null);
  const [queryError, setQueryError] = useState<string | null>(null);
  const [emptyProject, setEmptyProject] = useState(false);
  const bounds = useRef<TimeBounds>(timeBounds(state));
  const ctrl = useRef<AbortController | null>(null);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;

  useEffect(() => {
    ctrl.current?.abort();
    const ac = new AbortController();
    ctrl.current = ac;
    setRows(EMPTY_ROWS);
    setQueryError(null);
    setEmptyProject(false);
    if (!state.project) {
      setRows({ ...EMPTY_ROWS, loading: false });
      return;
    }
    const b = timeBounds(state);
    bounds.current = b;
    const filters = filterParams(state, b);
    const closed = filterParams(state, b, true);
    const q = searchQuery(state);
    let facetsQueryError = false;

    // The list first: it is what the first paint waits for.
    fetchLogPage(filters, q, FIRST_PAGE, null, ac.signal)
      .then((r) => {
        if (ac.signal.aborted) return;
        if (r.ok) {
          setRows({ logs: r.value.logs, cursor: r.value.next_cursor, hasMore: r.value.has_more, loading: false, error: null });
          if (r.value.logs.length === 0 && !q && !state.levels.length && !state.types.length) {
            // Nothing in this range: is there anything at all (any time)?
            fetchLogPage({ project_id: String(state.project) }, "", 1, null, ac.signal)
              .then((all) => {
                if (!ac.signal.aborted) setEmptyProject(all.ok && all.value.logs.length === 0);
              })
              .catch((e) => {
                if (!isAbort(e)) throw e;
              });
          }
        } else {
          setRows({ ...EMPTY_ROWS, loading: false, error: errorText(r.error) });
          if (r.error.status !== 400) return;
          const raw = state.q.trim();
          if (q === raw) {
            setQueryError(r.error.detail);
            return;
          }
          // With facet filters folded into q the positions are those of the combined text: ask
          // again with the user's own text for the position in it.
          fetchLogPage({ ...filters, level: "", log_type: "" }, raw, 1, null, ac.signal)
            .then((again) => {
              if (ac.signal.aborted || facetsQueryError) return;
              setQueryError(!again.ok && again.error.status === 400 ? again.error.detail : r.error.detail);
            })
            .catch((e) => {
              if (!isAbort(e)) throw e;
            });
        }
      })
      .catch((e) => {
        if (!isAbort(e)) throw e;
      });

    setHistLoading(true);
    fetchHistogram(closed, state.q.trim(), HISTOGRAM_BUCKETS, ac.signal)
      .then((r) => {
        if (ac.signal.aborted) return;
        setHistLoading(false);
        setHistogram(r.ok ? r.value : null);
      })
      .catch((e) => {
        if (!isAbort(e)) throw e;
      });
    // Facet counts: each dimension counted under the other one's filter (not its own), so the
    // values one could add to the selection keep their counts.
    const facetsFor = (drop: "level" | "log_type") => {
      const f = { ...closed };
      delete f[drop];
      return fetchFacets(f, state.q.trim(), ac.signal);
    };
    const both = state.levels.length || state.types.length;
    Promise.all(both ? [facetsFor("level"), facetsFor("log_type")] : [fetchFacets(closed, state.q.trim(), ac.signal)])
      .then(([a, b]) => {
        if (ac.signal.aborted || !a) return;
        if (!a.ok) {
          setFacets(null);
          if (a.error.status === 400 && /^Invalid query at position/.test(a.error.detail)) {
            facetsQueryError = true;
            setQueryError(a.error.detail);
          }
          return;
        }
        setFacets(b && b.ok ? { ...a.value, log_types: b.value.log_types } : a.value);
      })
      .catch((e) => {
        if (!isAbort(e)) throw e;
      });
    return () => ac.abort();
  }, [key]);

  const loadMore = useCallback(() => {
    const cur = rowsRef.current;
    if (cur.loading || !cur.hasMore || !cur.cursor || !state.project) return;
    const ac = ctrl.current;
    if (!ac) return;
    setRows({ ...cur, loading: true });
    fetchLogPage(filterParams(state, bounds.current), searchQuery(state), NEXT_PAGE, cur.cursor, ac.signal)
      .then((r) => {
        if (ac.signal.aborted) return;
        setRows((prev) =>
          r.ok
            ? { logs: prev.logs.concat(r.value.logs), cursor: r.value.next_cursor, hasMore: r.value.has_more, loading: false, error: null }
            : { ...prev, loading: false, hasMore: false, error: errorText(r.error) },
        );
      })
      .catch((e) => {
        if (!isAbort(e)) throw e;
      });
  }, [key]);

  // ---- live tail ----
  const [tailOn, setTailOn] = useState(false);
  const [paused, setPaused] = useState(false);
  const [tail, setTail] = useState<TailSnapshot | null>(null);
  const stream = useRef<TailStream | null>(null);

  useEffect(() => {
    setTail(null); // a new selection starts an empty stream
    if (!tailOn || !state.project) return;
    const s = new TailStream({
      projectId: state.project,
      q: state.q.trim(),
      levels: state.levels,
      types: state.types,
      onChange: setTail,
    });
    stream.current = s;
    s.setPaused(paused);
    return () => {
      s.close();
      stream.current = null;
    };
  }, [tailOn, key]);

  useEffect(() => stream.current?.setPaused(paused), [paused]);

  const toggleTail = useCallback(() => {
    setTailOn((on) => !on);
    setPaused(false);
  }, []);
  useEffect(() => {
    registerLiveTailToggle(toggleTail);
    return () => registerLiveTailToggle(null);
  }, [toggleTail]);

  // Tail logs above the loaded pages; a log both streamed and loaded shows once.
  const shown = useMemo(() => {
    const t = tail?.logs ?? [];
    if (!t.length) return rows.logs;
    const ids = new Set<number>();
    for (let i = 0; i < Math.min(rows.logs.length, t.length + 100); i++) ids.add(rows.logs[i]!.id);
    const fresh = ids.size ? t.filter((l) => !ids.has(l.id)) : t;
    return fresh.concat(rows.logs);
  }, [tail?.logs, rows.logs]);

  // ---- the open log (row click or a shared link's log=<id>) ----
  const [detail, setDetail] = useState<{ log: LogEntry | null; loading: boolean; error: string | null }>({
    log: null,
    loading: false,
    error: null,
  });
  useEffect(() => {
    if (!state.log) {
      setDetail({ log: null, loading: false, error: null });
      return;
    }
    const known = shown.find((l) => l.id === state.log);
    if (known) {
      setDetail({ log: known, loading: false, error: null });
      return;
    }
    if (!state.project) return;
    const ac = new AbortController();
    setDetail({ log: null, loading: true, error: null });
    fetchLog(state.project, state.log, ac.signal)
      .then((r) => {
        if (ac.signal.aborted) return;
        setDetail(r.ok ? { log: r.value, loading: false, error: null } : { log: null, loading: false, error: errorText(r.error) });
      })
      .catch((e) => {
        if (!isAbort(e)) throw e;
      });
    return () => ac.abort();
  }, [state.log, state.project]);

  const link = state.log ? `${location.origin}${href("/logs", { log: state.log })}` : "";

  if (!state.project) {
    return (
      <section class="explorer-empty">
        <h1>Logs</h1>
        <NeedProject />
      </section>
    );
  }

  return (
    <section class={"explorer" + (state.log ? " with-detail" : "")} data-testid="explorer">
      <h1 class="visually-hidden">Logs</h1>
      <div class="explorer-bar">
        <QueryBox value={state.q} error={queryError} onSubmit={(q) => go({ ...state, q, log: null })} />
        <TimeRange
          range={state.range}
          from={state.from}
          to={state.to}
          onRange={(range) => go({ ...state, range, from: null, to: null })}
          onAbsolute={(from, to) => go({ ...state, range: null, from, to })}
        />
        <TailBar
          on={tailOn}
          paused={paused}
          snapshot={tail}
          onToggle={toggleTail}
          onPause={() => setPaused((p) => !p)}
          onClear={() => stream.current?.clear()}
        />
      </div>
      <Facets
        facets={facets}
        levels={state.levels}
        types={state.types}
        onToggleLevel={(v) => go({ ...state, levels: toggle(state.levels, v) })}
        onToggleType={(v) => go({ ...state, types: toggle(state.types, v) })}
      />
      <div class="explorer-main">
        <Histogram data={histogram} loading={histLoading} onZoom={(from, to) => go({ ...state, range: null, from, to })} />
        {rows.error && !queryError && (
          <p class="error" role="alert">
            {rows.error}
          </p>
        )}
        {emptyProject && shown.length === 0 && <FirstLog projectId={state.project} />}
        {!emptyProject && !rows.loading && !rows.error && shown.length === 0 && (
          <p class="explorer-none" data-testid="no-logs">
            No logs match this query in this time range.
          </p>
        )}
        <LogList
          logs={shown}
          selectedId={state.log}
          onSelect={(l) => go({ ...state, log: state.log === l.id ? null : l.id }, true)}
          hasMore={rows.hasMore}
          loading={rows.loading}
          onNeedMore={loadMore}
        />
      </div>
      {state.log && (
        <LogDetail
          log={detail.log}
          loading={detail.loading}
          error={detail.error}
          link={link}
          onClose={() => go({ ...state, log: null }, true)}
        />
      )}
    </section>
  );
}

export default Explorer;
