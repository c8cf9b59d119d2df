// Virtualised log list: fixed row height, only the rows in (and just around) the viewport are in
// the DOM, so 50,000 loaded rows cost the same per frame as 50. The scroll container holds one
// spacer whose height (rows × ROW_HEIGHT) is set from JS (CSSOM, allowed by the CSP); the visible
// window is absolutely positioned inside it. Scrolling near the end asks for the next page.
//
// A fast scroll replaces every visible row in every frame, so a frame's work is kept to the diff
// of those few rows: the text of a row is made once per log and cached (timestamps are not parsed
// and formatted again each frame), a row's message is cut to what a row can show, and clicks and
// keys are handled once on the list (no closures per row and frame to allocate, diff and collect).
//
// A fling (a scrollbar drag, a flick) that moves the list by more than a screen between two frames
// shows rows nobody can read: until it slows down (FLING_SETTLE_MS without such a jump) the rows of
// the window are drawn as placeholders (the level's colour, no text), which takes the text layout
// and painting of every row out of those frames. Ordinary scrolling (less than a screen per frame)
// always draws the text.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { LogEntry } from "../../api/types";
import { formatTime } from './format';

export const ROW_HEIGHT = 28;
const OVERSCAN = 3;
/** A fling ends when no frame jumped more than a screen for this long. */
const FLING_SETTLE_MS = 120;
/** Ask for the next page when fewer than this many rows are left below the viewport. */
const PREFETCH_ROWS = 200;
/** A row shows one line, cut with an ellipsis far before this; the detail has the whole message. */
const ROW_TEXT_MAX = 400;

interface RowText {
  time: string;
  message: string;
}
const rowTexts = new WeakMap<LogEntry, RowText>();

function rowText(l: LogEntry): RowText {
  let t = rowTexts.get(l);
  if (!t) {
    const m = l.message || l.error_message || l.error_type || '';
    t = { time: formatTime(l.timestamp), message: m.length > ROW_TEXT_MAX ? m.slice(0, ROW_TEXT_MAX) : m };
    rowTexts.set(l, t);
  }
  return t;
}

const LEVEL_CLASS: Record<string, string> = {
  debug: 'level-badge level-debug',
  info: 'level-badge level-info',
  warning: 'level-badge level-warning',
  error: 'level-badge level-error',
  critical: 'level-badge level-critical',
};

/** Index of the row an event happened in, or -1. */
function rowIndex(e: Event): number {
  const row = (e.target as HTMLElement | null)?.closest?.('[data-index]') as HTMLElement | null;
  const i = row ? Number(row.dataset.index) : NaN;
  return Number.isFinite(i) ? i : -1;
}

interface Props {
  logs: LogEntry[];
  selectedId: number | null;
  onSelect: (log: LogEntry) => void;
  hasMore: boolean;
  loading: boolean;
  onNeedMore: () => void;
}

export function LogList({ logs, selectedId, onSelect, hasMore, loading, onNeedMore }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const spacer = useRef<HTMLDivElement>(null);
  const windowEl = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [fling, setFling] = useState(false);

  // Keep the row the reader is looking at in place when the live tail adds rows above it (at the
  // very top the list follows the newest instead). Only state is read here, never the DOM: a
  // read of scrollTop after rendering would force a synchronous layout in every frame.
  const shownLogs = useRef(logs);
  useLayoutEffect(() => {
    const prev = shownLogs.current;
    shownLogs.current = logs;
    const el = scroller.current;
    if (!el || prev === logs || scrollTop === 0) return;
    const top = Math.floor(scrollTop / ROW_HEIGHT);
    const was = prev[top];
    if (!was || logs[top]?.id === was.id) return;
    const at = logs.findIndex((l) => l.id === was.id);
    if (at < 0) return;
    const next = scrollTop + (at - top) * ROW_HEIGHT;
    el.scrollTop = next;
    setScrollTop(next);
  }, [logs]);

  useLayoutEffect(() => {
    if (spacer.current) spacer.current.style.height = `${logs.length * ROW_HEIGHT}px`;
  }, [logs.length]);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let frame = 0;
    let settle = 0;
    let last = el.scrollTop;
    const onScroll = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        const top = el.scrollTop;
        if (Math.abs(top - last) > el.clientHeight) {
          setFling(true);
          clearTimeout(settle);
          settle = window.setTimeout(() => setFling(false), FLING_SETTLE_MS);
        }
        last = top;
        setScrollTop(top);
      });
    };
    const measure = () => setViewport(el.clientHeight || 600);
    measure();
    el.addEventListener('scroll', onScroll, { passive: true });
    const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(measure) : null;
    ro?.observe(el);
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro?.disconnect();
      if (frame) cancelAnimationFrame(frame);
      clearTimeout(settle);
    };
  }, []);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(logs.length, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);

  useLayoutEffect(() => {
    if (windowEl.current) windowEl.current.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
  }, [first]);

  useEffect(() => {
    if (hasMore && !loading && logs.length - last < PREFETCH_ROWS) onNeedMore();
  }, [last, logs.length, hasMore, loading]);

  const onClick = (e: MouseEvent) => {
    const i = rowIndex(e);
    if (i >= 0 && logs[i]) onSelect(logs[i]);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    if ((e.key === 'Enter' || e.key === ' ') && target.dataset.index !== undefined) {
      const i = rowIndex(e);
      if (i >= 0 && logs[i]) {
        e.preventDefault();
        onSelect(logs[i]);
      }
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const idx = Number(target.dataset.index);
    if (target.dataset.index === undefined || !Number.isFinite(idx)) return;
    e.preventDefault();
    const next = Math.max(0, Math.min(logs.length - 1, idx + (e.key === 'ArrowDown' ? 1 : -1)));
    const el = scroller.current;
    if (el) {
      const top = next * ROW_HEIGHT;
      if (top < el.scrollTop) el.scrollTop = top;
      else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
    }
    requestAnimationFrame(() => {
      (scroller.current?.querySelector(`[data-index="${next}"]`) as HTMLElement | null)?.focus();
    });
  };

  const rows = [];
  const slots = Math.max(1, last - first);
  for (let i = first; i < last; i++) {
    const l = logs[i]!;
    const selected = l.id === selectedId;
    if (fling) {
      rows.push(<div key={i % slots} class={`log-row log-row-fling fling-${l.level}`} data-testid="log-row" data-index={i} role="row" aria-rowindex={i + 1} />);
      continue;
    }
    const text = rowText(l);
    rows.push(
      // Keyed by slot (index modulo the window), not by log: scrolling re-fills the same few row
      // elements with other logs instead of creating and dropping DOM nodes every frame.
      <div
        key={i % slots}
        class={'log-row' + (selected ? ' selected' : '')}
        data-testid="log-row"
        data-index={i}
        data-id={l.id}
        role="row"
        tabIndex={0}
        aria-expanded={selected}
        aria-rowindex={i + 1}
      >
        <span class="log-ts" role="cell">{text.time}</span>
        <span class={LEVEL_CLASS[l.level] ?? `level-badge level-${l.level}`} role="cell">{l.level}</span>
        <span class="log-type" role="cell">{l.log_type}</span>
        <span class="log-msg" role="cell">{text.message}</span>
      </div>,
    );
  }

  return (
    <div
      class="log-list"
      ref={scroller}
      role="grid"
      aria-label="Logs"
      aria-rowcount={logs.length}
      aria-busy={loading}
      data-testid="log-list"
      data-loaded={logs.length}
      onClick={onClick}
      onKeyDown={onKeyDown}
    >
      <div class="log-list-spacer" ref={spacer}>
        <div class="log-list-window" ref={windowEl}>
          {rows}
        </div>
      </div>
      {loading && <div class="log-list-status" role="status">Loading…</div>}
      {!loading && !hasMore && logs.length > 0 && <div class="log-list-status">End of results</div>}
    </div>
  );
}
