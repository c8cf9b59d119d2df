// Metrics of the current project over the range in the URL (`?range=24h|7d|30d`): error rate,
// log volume by level, top errors, and for one endpoint (`?endpoint=METHOD path`) its latency
// (p50, average, p95, p99) and request rate from the hourly/daily aggregates.
import { useMemo } from "preact/hooks";
import { api } from "../api/client";
import { LEVELS, type Aggregated, type AggregatedRow, type ErrorRate, type LogVolume, type TopErrors } from "../api/types";
import { Chart, type SeriesSpec } from "../components/Chart";
import { ErrorLine } from "../components/Form";
import { NeedProject } from "../components/NeedProject";
import { Time } from "../components/Time";
import { count } from "../components/format";
import { useApi } from "../components/useApi";
import { useCurrentProject } from "../state/projects";
import { setParams, useLocation } from "../state/url";

const RANGES = [
  { id: "24h", label: "Last 24 hours", seconds: 86400, period: "today" },
  { id: "7d", label: "Last 7 days", seconds: 7 * 86400, period: "last7days" },
  { id: "30d", label: "Last 30 days", seconds: 30 * 86400, period: "last30days" },
] as const;

function ts(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** Start of an aggregate row's bucket (date as YYYYMMDD or YYYY-MM-DD, hour or null), Unix s. */
function bucketStart(row: AggregatedRow): number {
  const d = row.date.replace(/-/g, "");
  const t = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)), row.hour ?? 0);
  return Math.floor(t / 1000);
}

function bucketSeconds(g: Aggregated["granularity"]): number {
  return g === "hourly" ? 3600 : g === "daily" ? 86400 : g === "weekly" ? 7 * 86400 : 30 * 86400;
}

/**
 * Every bucket of width `step` from `since` to now, oldest first, with the rows' values where the
 * API has a row (the caches omit empty buckets) and zeros elsewhere, so the x axis is the range.
 */
function fill<R extends { timestamp: string }>(rows: R[], step: number, since: number, get: (r: R) => number[], width: number) {
  const byBucket = new Map<number, number[]>();
  for (const r of rows) byBucket.set(Math.floor(ts(r.timestamp) / step) * step, get(r));
  const x: number[] = [];
  const cols: number[][] = Array.from({ length: width }, () => []);
  const end = Math.floor(Date.now() / 1000);
  for (let t = Math.floor(since / step) * step; t <= end; t += step) {
    x.push(t);
    const v = byBucket.get(t);
    for (let i = 0; i < width; i++) (cols[i] as number[]).push(v ? (v[i] ?? 0) : 0);
  }
  return { x, cols };
}

const ms = (v: number) => (v >= 1000 ? `${Math.round(v / 100) / 10} s` : `${Math.round(v * 10) / 10} ms`);
const perMin = (v: number) => `${Math.round(v * 100) / 100}/min`;

function ErrorRateChart({ data, since }: { data: ErrorRate; since: number }) {
  const { x, series } = useMemo(() => {
    const { x, cols } = fill(data.data, 300, Math.max(since, Date.now() / 1000 - 86400), (r) => [r.error_count, r.critical_count], 2);
    return {
      x,
      series: [
        { spec: { label: "Errors", color: "--lvl-error", fill: true } as SeriesSpec, values: cols[0] ?? [] },
        { spec: { label: "Critical", color: "--lvl-critical" } as SeriesSpec, values: cols[1] ?? [] },
      ],
    };
  }, [data, since]);
  return <Chart x={x} series={series} label="Errors and critical logs per 5 minutes" />;
}

function VolumeChart({ data, since }: { data: LogVolume; since: number }) {
  const { x, series } = useMemo(() => {
    const { x, cols } = fill(data.data, 3600, Math.max(since, Date.now() / 1000 - 7 * 86400), (r) => LEVELS.map((l) => r[l] ?? 0), LEVELS.length);
    return {
      x,
      series: LEVELS.map((l, i) => ({ spec: { label: l, color: `--lvl-${l}` } as SeriesSpec, values: cols[i] ?? [] })),
    };
  }, [data, since]);
  return <Chart x={x} series={series} label="Logs per hour by level" />;
}

function endpointKey(r: AggregatedRow): string {
  return `${r.endpoint_method ?? "*"} ${r.endpoint_path ?? ""}`.trim();
}

function Latency({ data, endpoint }: { data: Aggregated; endpoint: string | null }) {
  const endpoints = useMemo(() => {
    const totals = new Map<string, number>();
    for (const r of data.data) if (r.endpoint_path) totals.set(endpointKey(r), (totals.get(endpointKey(r)) ?? 0) + r.log_count);
    return [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([k]) => k);
  }, [data]);
  const chosen = endpoint && endpoints.includes(endpoint) ? endpoint : (endpoints[0] ?? null);
  const charts = useMemo(() => {
    if (!chosen) return null;
    const rows = data.data.filter((r) => r.endpoint_path && endpointKey(r) === chosen).sort((a, b) => bucketStart(a) - bucketStart(b));
    const x = rows.map(bucketStart);
    const per = bucketSeconds(data.granularity) / 60;
    return {
      x,
      latency: [
        { spec: { label: "p50", color: "--accent" } as SeriesSpec, values: rows.map((r) => r.p50_duration_ms ?? null) },
        { spec: { label: "avg", color: "--lvl-info" } as SeriesSpec, values: rows.map((r) => r.avg_duration_ms) },
        { spec: { label: "p95", color: "--lvl-warning" } as SeriesSpec, values: rows.map((r) => r.p95_duration_ms) },
        { spec: { label: "p99", color: "--lvl-error" } as SeriesSpec, values: rows.map((r) => r.p99_duration_ms) },
      ],
      rate: [
        { spec: { label: "requests", color: "--accent", bars: true } as SeriesSpec, values: rows.map((r) => r.log_count / per) },
        { spec: { label: "errors (≥ 400)", color: "--lvl-error", bars: true } as SeriesSpec, values: rows.map((r) => r.error_count / per) },
      ],
    };
  }, [data, chosen]);
  if (!chosen || !charts)
    return <p class="empty">No endpoint metrics in this range (they come from endpoint logs, aggregated every hour).</p>;
  return (
    <>
      <label class="inline-field">
        Endpoint
        <select value={chosen} onChange={(e) => setParams({ endpoint: e.currentTarget.value }, { replace: true })}>
          {endpoints.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      <h3>Latency ({data.granularity})</h3>
      <p class="muted small">The aggregates carry the median (p50), average, p95 and p99 of each bucket.</p>
      <Chart x={charts.x} series={charts.latency} label={`Latency of ${chosen}`} valueFormat={ms} />
      <h3>Request rate</h3>
      <Chart x={charts.x} series={charts.rate} label={`Request rate of ${chosen}`} valueFormat={perMin} />
    </>
  );
}

export function Metrics() {
  const project = useCurrentProject();
  const pid = project?.project_id ?? null;
  const { params } = useLocation();
  const range = RANGES.find((r) => r.id === params.get("range")) ?? RANGES[0];
  const endpoint = params.get("endpoint");
  // Rounded to the minute so the charts' memoised data does not change on every render.
  const since = Math.floor(Date.now() / 60000) * 60 - range.seconds;
  const errorRate = useApi(pid === null ? null : () => api.get<ErrorRate>("/api/v1/metrics/error-rate", { project_id: pid }), [pid]);
  const volume = useApi(pid === null ? null : () => api.get<LogVolume>("/api/v1/metrics/log-volume", { project_id: pid }), [pid]);
  const top = useApi(pid === null ? null : () => api.get<TopErrors>("/api/v1/metrics/top-errors", { project_id: pid, limit: 10 }), [pid]);
  const agg = useApi(
    pid === null ? null : () => api.get<Aggregated>("/api/v1/metrics/aggregated", { project_id: pid, type: "endpoint", period: range.period }),
    [pid, range.period],
  );
  if (!project || pid === null) return <NeedProject />;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Metrics · {project.name}</h1>
        <div class="actions" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button key={r.id} type="button" aria-pressed={r.id === range.id} onClick={() => setParams({ range: r.id === "24h" ? null : r.id })}>
              {r.label}
            </button>
          ))}
        </div>
      </div>
      <div class="grid">
        <section class="card" aria-labelledby="m-errors">
          <h2 id="m-errors">Error rate</h2>
          <ErrorLine error={errorRate.error} />
          {errorRate.data ? <ErrorRateChart data={errorRate.data} since={since} /> : null}
          {range.seconds > 86400 ? <p class="muted small">Error rate is kept in 5-minute buckets for the last 24 hours.</p> : null}
        </section>
        <section class="card" aria-labelledby="m-volume">
          <h2 id="m-volume">Log volume</h2>
          <ErrorLine error={volume.error} />
          {volume.data ? <VolumeChart data={volume.data} since={since} /> : null}
          {range.seconds > 7 * 86400 ? <p class="muted small">Hourly volume is kept for the last 7 days.</p> : null}
        </section>
      </div>
      <section class="card" aria-labelledby="m-top">
        <h2 id="m-top">Top errors (24 h)</h2>
        <ErrorLine error={top.error} />
        {top.data && top.data.errors.length === 0 ? <p class="empty">No unresolved errors in the last 24 hours.</p> : null}
        {top.data && top.data.errors.length > 0 ? (
          <table class="data">
            <thead>
              <tr>
                <th>Error</th>
                <th class="num">Events</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {top.data.errors.map((e) => (
                <tr key={e.fingerprint}>
                  <td>
                    <strong>{e.error_type ?? "Error"}</strong> <span class="muted">{e.error_message ?? ""}</span>
                  </td>
                  <td class="num">{count(e.occurrence_count)}</td>
                  <td>
                    <Time iso={e.last_seen} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
      <section class="card" aria-labelledby="m-endpoints">
        <h2 id="m-endpoints">Endpoints</h2>
        <ErrorLine error={agg.error} />
        {agg.data ? <Latency data={agg.data} endpoint={endpoint} /> : null}
      </section>
    </section>
  );
}
