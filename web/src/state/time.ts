// Time ranges in the URL: `?range=1h|6h|24h|7d|30d` (relative to now) or `?from=…&to=…`
// (ISO 8601). Pages turn them into API parameters with `rangeQuery`.
import { useLocation } from "./url";

export const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"] as const;
export type RangeName = (typeof RANGES)[number];

const SECONDS: Record<RangeName, number> = {
  "15m": 900,
  "1h": 3600,
  "6h": 21600,
  "24h": 86400,
  "7d": 604800,
  "30d": 2592000,
};

export interface TimeRange {
  /** Unix seconds. */
  start: number;
  end: number;
  /** The range name when relative, null for an absolute from/to range. */
  name: RangeName | null;
}

function parseTime(v: string | null): number | null {
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

export function rangeFromParams(params: URLSearchParams, fallback: RangeName = "24h"): TimeRange {
  const from = parseTime(params.get("from"));
  const to = parseTime(params.get("to"));
  if (from !== null && to !== null && to > from) return { start: from, end: to, name: null };
  const raw = params.get("range");
  const name = (RANGES as readonly string[]).includes(raw ?? "") ? (raw as RangeName) : fallback;
  const end = Math.floor(Date.now() / 1000);
  return { start: end - SECONDS[name], end, name };
}

export function useTimeRange(fallback: RangeName = "24h"): TimeRange {
  return rangeFromParams(useLocation().params, fallback);
}

export function rangeSeconds(name: RangeName): number {
  return SECONDS[name];
}

/** API parameters of the range (`start_time`/`end_time` as ISO 8601). */
export function rangeQuery(r: TimeRange): { start_time: string; end_time: string } {
  return {
    start_time: new Date(r.start * 1000).toISOString(),
    end_time: new Date(r.end * 1000).toISOString(),
  };
}
