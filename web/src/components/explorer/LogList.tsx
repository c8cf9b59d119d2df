// Virtualised log list: fixed row height, only the rows in (and just around) the viewport are in
// the DOM, so 50,000 loaded rows cost the same per frame as 50. The scroll container holds one
// spacer whose height (rows × ROW_HEIGHT) is set from JS (CSSOM, allowed by the CSP); the visible
// window is absolutely positioned inside it. Scrolling near the end asks for the next page.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { LogEntry } from "../../api/types";
import { formatTime } from './format';

export const ROW_HEIGHT = 28;
const OVERSCAN = 6;
/** Ask for the next page when fewer than this many rows are left below the viewport. */
const PREFETCH_ROWS = 200;

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
    const onScroll = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setScrollTop(el.scrollTop);
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

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const target = e.target as HTMLElement;
    const idx = Number(target.dataset.index);
    if (!Number.isFinite(idx)) return;
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
        onClick={() => onSelect(l)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            onSelect(l);
          }
        }}
      >
        <span class="log-ts" role="cell">{formatTime(l.timestamp)}</span>
        <span class={`level-badge level-${l.level}`} role="cell">{l.level}</span>
        <span class="log-type" role="cell">{l.log_type}</span>
        <span class="log-msg" role="cell">{l.message || l.error_message || l.error_type || ''}</span>
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
