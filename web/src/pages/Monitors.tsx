// Uptime monitors of the current project: state, the last checks as bars, latency, and the ping
// URL of heartbeats; create an http or heartbeat monitor, delete one.
import { useState } from "preact/hooks";
import { connectors, monitors, type ApiError, type Connector, type MonitorKind, type Monitor } from "../api/client";
import { CopyButton } from "../components/CopyButton";
import { ErrorLine, Field } from "../components/Form";
import { NeedProject } from "../components/NeedProject";
import { Time } from "../components/Time";
import { useApi } from "../components/useApi";
import { useProjectId } from "../state/url";

const BARS = 30;

function pingUrl(m: Monitor): string {
  // The server answers a path or an absolute URL; show one the user can paste into cron.
  return m.ping_url.startsWith("/") ? `${location.origin}${m.ping_url}` : m.ping_url;
}

function UptimeBars({ id }: { id: number }) {
  const checks = useApi(() => monitors.checks(id, BARS), [id]);
  if (!checks.data) return <span class="muted">{checks.error ? "—" : "…"}</span>;
  const list = [...checks.data.checks].reverse(); // oldest first, left to right
  if (list.length === 0) return <span class="muted">no checks recorded</span>;
  return (
    <span>
      <span class="uptime-bars" role="img" aria-label={`Last ${list.length} checks: ${list.filter((c) => c.ok).length} up`} data-testid="uptime-bars">
        {list.map((c, i) => (
          <span
            key={i}
            class={`uptime-bar${c.ok ? "" : " down"}`}
            title={`${new Date(c.checked_at).toLocaleString()}: ${c.ok ? "up" : "down"}${c.latency_ms !== null ? `, ${c.latency_ms} ms` : ""}${c.error ? `, ${c.error}` : ""}`}
          />
        ))}
      </span>{" "}
      {checks.data.uptime_percent !== null ? <span class="muted">{checks.data.uptime_percent.toFixed(1)} %</span> : null}
      {checks.data.avg_latency_ms !== null ? <span class="muted"> · avg {Math.round(checks.data.avg_latency_ms)} ms</span> : null}
    </span>
  );
}

function NewMonitor({ projectId, conns, onCreated }: { projectId: number; conns: Connector[]; onCreated: (m: Monitor) => void }) {
  const [kind, setKind] = useState<MonitorKind>("heartbeat");
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <form
      class="card"
      aria-label="New monitor"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.currentTarget as HTMLFormElement;
        const f = new FormData(form);
        const num = (k: string) => Number(f.get(k));
        const r = await monitors.create({
          project_id: projectId,
          kind,
          name: String(f.get("name") ?? ""),
          interval_s: num("interval_s"),
          grace_s: num("grace_s"),
          connector_ids: f.getAll("connector").map(Number),
          ...(kind === "http" ? { target_url: String(f.get("target_url") ?? ""), timeout_s: num("timeout_s"), expected_status: num("expected_status") } : {}),
        });
        if (!r.ok) return setError(r.error);
        setError(null);
        form.reset();
        onCreated(r.value);
      }}
    >
      <h2>New monitor</h2>
      <div class="form-grid">
        <div class="field">
          <label for="f-monitor-kind">Kind</label>
          <select id="f-monitor-kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as MonitorKind)}>
            <option value="heartbeat">Heartbeat (your job pings Ledger)</option>
            <option value="http">HTTP (Ledger checks a URL)</option>
          </select>
        </div>
        <Field label="Monitor name" name="name" required maxLength={255} />
        {kind === "http" ? <Field label="Target URL" name="target_url" type="url" required placeholder="http://service.internal/health" /> : null}
        <Field label={kind === "http" ? "Check every (s)" : "Expected ping every (s)"} name="interval_s" type="number" min={10} max={86400} defaultValue="60" required />
        <Field label="Grace (s)" name="grace_s" type="number" min={0} max={86400} defaultValue="0" required />
        {kind === "http" ? (
          <>
            <Field label="Timeout (s)" name="timeout_s" type="number" min={1} max={60} defaultValue="10" required />
            <Field label="Expected status" name="expected_status" type="number" min={100} max={599} defaultValue="200" required />
          </>
        ) : null}
        {conns.length > 0 ? (
          <fieldset class="wide">
            <legend>Tell of state changes</legend>
            {conns.map((c) => (
              <label key={c.id}>
                <input type="checkbox" name="connector" value={String(c.id)} /> {c.name} ({c.kind})
              </label>
            ))}
          </fieldset>
        ) : null}
      </div>
      <ErrorLine error={error} />
      <button type="submit" class="primary">
        Create monitor
      </button>
    </form>
  );
}

export function Monitors() {
  const projectId = useProjectId();
  const list = useApi(() => (projectId === null ? Promise.resolve({ ok: true as const, value: [] as Monitor[], status: 200 }) : monitors.list(projectId)), [projectId]);
  const conns = useApi(() => connectors.list(), []);
  const [error, setError] = useState<ApiError | null>(null);
  const [created, setCreated] = useState<Monitor | null>(null);
  if (projectId === null) return <NeedProject />;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Monitors</h1>
        <div class="actions">
          <button type="button" onClick={list.reload}>
            Refresh
          </button>
        </div>
      </div>
      <NewMonitor
        projectId={projectId}
        conns={conns.data?.connectors ?? []}
        onCreated={(m) => {
          setCreated(m.kind === "heartbeat" ? m : null);
          list.reload();
        }}
      />
      {created ? (
        <div class="notice" role="status" data-testid="ping-url">
          <p>
            Heartbeat “{created.name}” created. Have your job request this URL at least every {created.interval_s} s:
          </p>
          <pre>
            <code>curl -fsS -X POST {pingUrl(created)}</code>
          </pre>
          <CopyButton text={pingUrl(created)} label="Copy ping URL" />
        </div>
      ) : null}
      <ErrorLine error={error ?? list.error} />
      {list.data && list.data.length === 0 ? <p class="card empty">No monitors in this project.</p> : null}
      {list.data && list.data.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Monitors</caption>
          <thead>
            <tr>
              <th>Monitor</th>
              <th>State</th>
              <th>Last checks</th>
              <th>Latency</th>
              <th>Last seen</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((m) => (
              <tr key={m.id} data-testid="monitor-row">
                <td>
                  {m.name} <span class="muted">({m.kind})</span>
                  <div class="muted">{m.kind === "http" ? m.target_url : <code>{pingUrl(m)}</code>}</div>
                </td>
                <td class={`state-${m.state}`} data-testid="monitor-state">
                  {m.state}
                </td>
                <td>
                  <UptimeBars id={m.id} key={`${m.id}-${m.checks_total}`} />
                </td>
                <td>{m.last_latency_ms !== null ? `${m.last_latency_ms} ms` : "—"}</td>
                <td>
                  <Time iso={m.kind === "heartbeat" ? m.last_ping_at : m.last_check_at} />
                </td>
                <td class="actions">
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete monitor ${m.name}`}
                    onClick={async () => {
                      if (!confirm(`Delete the monitor “${m.name}”?`)) return;
                      const r = await monitors.remove(m.id);
                      if (!r.ok) return setError(r.error);
                      setError(null);
                      if (created?.id === m.id) setCreated(null);
                      list.reload();
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
