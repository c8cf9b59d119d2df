// Explorer state <-> URL. Every filter and the time range live in the query string of /logs so a
// link reproduces the view: project, q, range (relative) or from/to (absolute, ISO 8601), level,
// type (comma lists), log (the id of the log shown in the detail panel).
// Pure functions only: the page reads location.search and writes through the app's URL helpers.

import { LEVELS, LOG_TYPES } from "../../api/types";

export { LEVELS, LOG_TYPES };

/** Relative ranges offered by the picker, in seconds. */
export const RANGES: ReadonlyArray<{ key: string; label: string; seconds: number }> = [
  { key: '15m', label: 'Last 15 minutes', seconds: 15 * 60 },
  { key: '1h', label: 'Last hour', seconds: 3600 },
  { key: '6h', label: 'Last 6 hours', seconds: 6 * 3600 },
  { key: '24h', label: 'Last 24 hours', seconds: 86400 },
  { key: '7d', label: 'Last 7 days', seconds: 7 * 86400 },
  { key: '30d', label: 'Last 30 days', seconds: 30 * 86400 },
];
export const DEFAULT_RANGE = '24h';

export interface ExplorerState {
  project: number | null;
  q: string;
  /** A key of RANGES when the range is relative to now; null when from/to are set. */
  range: string | null;
  from: string | null; // ISO 8601
  to: string | null; // ISO 8601
  levels: string[];
  types: string[];
  log: number | null;
}

function list(v: string | null, allowed: readonly string[]): string[] {
  if (!v) return [];
  const out: string[] = [];
  for (const part of v.split(',')) {
    const p = part.trim().toLowerCase();
    if (allowed.includes(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

function posInt(v: string | null): number | null {
  if (!v || !/^[0-9]{1,15}$/.test(v)) return null;
  const n = Number(v);
  return n > 0 ? n : null;
}

function isoOrNull(v: string | null): string | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

export function rangeSeconds(key: string): number | null {
  const r = RANGES.find((x) => x.key === key);
  if (r) return r.seconds;
  const m = /^([1-9][0-9]{0,3})([mhd])$/.exec(key);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'm' ? 60 : m[2] === 'h' ? 3600 : 86400);
}

export function parseState(search: string | URLSearchParams): ExplorerState {
  const p = typeof search === 'string' ? new URLSearchParams(search) : search;
  let from = isoOrNull(p.get('from'));
  let to = isoOrNull(p.get('to'));
  let range: string | null = p.get('range');
  if (range !== null && rangeSeconds(range) === null) range = null;
  if (from || to) {
    if (from && to && Date.parse(from) > Date.parse(to)) [from, to] = [to, from];
    range = null;
  } else if (!range) {
    range = DEFAULT_RANGE;
  }
  return {
    project: posInt(p.get('project')),
    q: p.get('q') ?? '',
    range,
    from: range ? null : from,
    to: range ? null : to,
    levels: list(p.get('level'), LEVELS),
    types: list(p.get('type'), LOG_TYPES),
    log: posInt(p.get('log')),
  };
}

/** The query string of a state (without '?'); defaults are left out so links stay short. */
export function stateToSearch(s: ExplorerState): string {
  const p = new URLSearchParams();
  if (s.project) p.set('project', String(s.project));
  if (s.q) p.set('q', s.q);
  if (s.range) {
    if (s.range !== DEFAULT_RANGE) p.set('range', s.range);
  } else {
    if (s.from) p.set('from', s.from);
    if (s.to) p.set('to', s.to);
  }
  if (s.levels.length) p.set('level', s.levels.join(','));
  if (s.types.length) p.set('type', s.types.join(','));
  if (s.log) p.set('log', String(s.log));
  return p.toString();
}

export interface TimeBounds {
  /** Unix seconds. */
  start: number;
  /** Unix seconds, or null: open-ended (a relative range includes what arrives after the page loaded). */
  end: number | null;
}

export function timeBounds(s: ExplorerState, nowMs = Date.now()): TimeBounds {
  if (s.range) {
    const secs = rangeSeconds(s.range) ?? 86400;
    return { start: Math.floor(nowMs / 1000) - secs, end: null };
  }
  const end = s.to ? Math.floor(Date.parse(s.to) / 1000) : null;
  const start = s.from ? Math.floor(Date.parse(s.from) / 1000) : (end ?? Math.floor(nowMs / 1000)) - 86400;
  return { start, end };
}

/** Parameters shared by the list, search, histogram and facets requests. */
export function filterParams(s: ExplorerState, b: TimeBounds, closedEnd = false, nowMs = Date.now()): Record<string, string> {
  const out: Record<string, string> = {};
  if (s.project) out.project_id = String(s.project);
  out.start_time = String(b.start);
  if (b.end !== null) out.end_time = String(b.end);
  else if (closedEnd) out.end_time = String(Math.ceil(nowMs / 1000));
  if (s.levels.length) out.level = s.levels.join(',');
  if (s.types.length) out.log_type = s.types.join(',');
  return out;
}

/**
 * The list endpoint takes level/log_type filters, the search endpoint only q: with a query, the
 * facet filters are appended to it in the query language so both endpoints select the same logs.
 */
export function searchQuery(s: ExplorerState): string {
  const q = s.q.trim();
  if (!q) return '';
  const parts = [`(${q})`];
  if (s.levels.length) parts.push('(' + s.levels.map((l) => `level:${l}`).join(' OR ') + ')');
  if (s.types.length) parts.push('(' + s.types.map((t) => `log_type:${t}`).join(' OR ') + ')');
  return parts.join(' ');
}

export function toggle(values: string[], v: string): string[] {
  return values.includes(v) ? values.filter((x) => x !== v) : [...values, v];
}
