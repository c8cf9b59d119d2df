// Live tail client: GET /api/v1/logs/tail (Server-Sent Events) into a bounded buffer.
//
// One TailStream per open explorer with tail switched on. The browser's EventSource carries the
// session cookie (same origin); the stream's events are `connected`, `log` (a LogEntryResponse),
// `dropped` ({"dropped": n}, logs the server skipped) and `heartbeat`. Logs are handed to the view
// in batches, at most once per animation frame, newest first. The client keeps at most `capacity`
// logs: beyond it the oldest are dropped and counted with the server's drops, so a burst never
// grows memory or the DOM without bound. While paused, new logs wait in a queue of the same bound.
//
// Threading: browser main thread only. Ownership: the caller owns the stream and must close() it.

import type { LogEntry } from "../api/types";

export const TAIL_CAPACITY = 5000;

export type TailStatus = 'connecting' | 'live' | 'paused' | 'reconnecting' | 'error' | 'closed';

export interface TailSnapshot {
  /** Newest first, at most `capacity`. */
  logs: LogEntry[];
  /** Logs received while paused, not yet shown. */
  pending: number;
  /** Dropped by the server (rate bound) plus dropped here (buffer bound). */
  dropped: number;
  status: TailStatus;
  error: string | null;
}

export interface TailOptions {
  projectId: number;
  q?: string;
  levels?: string[];
  types?: string[];
  capacity?: number;
  /** Called at most once per frame with the whole state; the logs array is a new array each time. */
  onChange: (s: TailSnapshot) => void;
  /** For tests and the bench: the EventSource constructor (default: window.EventSource). */
  eventSource?: typeof EventSource;
}

export function tailUrl(o: Pick<TailOptions, 'projectId' | 'q' | 'levels' | 'types'>): string {
  const p = new URLSearchParams({ project_id: String(o.projectId) });
  if (o.q && o.q.trim()) p.set('q', o.q.trim());
  if (o.levels && o.levels.length) p.set('level', o.levels.join(','));
  if (o.types && o.types.length) p.set('log_type', o.types.join(','));
  return '/api/v1/logs/tail?' + p.toString();
}

export class TailStream {
  private es: EventSource | null = null;
  private logs: LogEntry[] = [];
  private queue: LogEntry[] = []; // arrived since the last flush (or while paused), oldest first
  private seen = new Set<number>();
  private dropped = 0;
  private status: TailStatus = 'connecting';
  private error: string | null = null;
  private paused = false;
  private frame = 0;
  private readonly capacity: number;

  constructor(private readonly o: TailOptions) {
    this.capacity = o.capacity ?? TAIL_CAPACITY;
    this.open();
  }

  private open(): void {
    const ES = this.o.eventSource ?? window.EventSource;
    const es = new ES(tailUrl(this.o), { withCredentials: true });
    this.es = es;
    es.addEventListener('connected', () => {
      this.status = this.paused ? 'paused' : 'live';
      this.error = null;
      this.schedule();
    });
    es.addEventListener('log', (ev) => {
      let log: LogEntry;
      try {
        log = JSON.parse((ev as MessageEvent).data) as LogEntry;
      } catch {
        return;
      }
      if (typeof log.id === 'number') {
        if (this.seen.has(log.id)) return; // a resumed stream may repeat the last few
        this.seen.add(log.id);
      }
      this.queue.push(log);
      if (this.queue.length > this.capacity) {
        // Paused (or a frame never came): keep the newest `capacity`.
        const over = this.queue.length - this.capacity;
        for (const l of this.queue.splice(0, over)) this.seen.delete(l.id);
        this.dropped += over;
      }
      this.schedule();
    });
    es.addEventListener('dropped', (ev) => {
      try {
        const n = Number(JSON.parse((ev as MessageEvent).data).dropped);
        if (Number.isFinite(n) && n > 0) this.dropped += n;
      } catch {
        /* a malformed event is ignored */
      }
      this.schedule();
    });
    es.onerror = () => {
      if (this.status === 'closed') return;
      // EventSource reconnects by itself unless the server answered with an error status
      // (then readyState is CLOSED: e.g. 400 bad query, 401, 429 too many streams).
      if (es.readyState === EventSource.CLOSED) {
        this.status = 'error';
        this.error = 'Live tail stopped: the server refused the stream (check the query, or too many open streams).';
      } else {
        this.status = 'reconnecting';
      }
      this.schedule();
    };
  }

  private schedule(): void {
    if (this.frame || this.status === 'closed') return;
    const raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: FrameRequestCallback) => setTimeout(() => f(0), 16);
    this.frame = raf(() => {
      this.frame = 0;
      this.flush();
    }) as unknown as number;
  }

  private flush(): void {
    if (!this.paused && this.queue.length) {
      const fresh = this.queue.reverse(); // newest first
      this.queue = [];
      let next = fresh.concat(this.logs);
      if (next.length > this.capacity) {
        for (let i = this.capacity; i < next.length; i++) this.seen.delete(next[i]!.id);
        this.dropped += next.length - this.capacity;
        next = next.slice(0, this.capacity);
      }
      this.logs = next;
    }
    this.o.onChange(this.snapshot());
  }

  snapshot(): TailSnapshot {
    return {
      logs: this.logs,
      pending: this.paused ? this.queue.length : 0,
      dropped: this.dropped,
      status: this.status,
      error: this.error,
    };
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    if (this.status === 'live' || this.status === 'paused') this.status = paused ? 'paused' : 'live';
    this.schedule();
  }

  /** Forget what was shown (the view was cleared); the stream stays open. */
  clear(): void {
    this.logs = [];
    this.queue = [];
    this.seen.clear();
    this.dropped = 0;
    this.schedule();
  }

  close(): void {
    this.status = 'closed';
    this.es?.close();
    this.es = null;
    if (this.frame) {
      if (typeof cancelAnimationFrame === 'function') cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
  }
}

// The app shell's `t` shortcut: the open explorer registers its toggle here; the shell calls
// toggleLiveTail() (a no-op returning false when no explorer is open).
let tailToggle: (() => void) | null = null;

export function registerLiveTailToggle(fn: (() => void) | null): void {
  tailToggle = fn;
}

export function toggleLiveTail(): boolean {
  if (!tailToggle) return false;
  tailToggle();
  return true;
}
