// Alerts of the current project: rules (create, edit, enable/disable, delete), the history of
// firings (ack, snooze), the account's connectors (create, test, delete) and the project's
// maintenance windows.
import { useState } from "preact/hooks";
import {
  alerts,
  connectors,
  type AlertAggregation,
  type AlertMetric,
  type AlertRule,
  type AlertRuleInput,
  type ApiError,
  type Comparator,
  type Connector,
  type ConnectorKind,
  type Result,
} from "../api/client";
import { ErrorLine, Field } from "../components/Form";
import { INBOX_CHANGED } from "../components/InboxBell";
import { NeedProject } from "../components/NeedProject";
import { Time } from "../components/Time";
import { useApi } from "../components/useApi";
import { useProjectId } from "../state/url";

const METRICS: [AlertMetric, string][] = [
  ["error_rate", "Error rate (%)"],
  ["error_count", "Error count"],
  ["log_volume", "Log volume"],
  ["p50_latency", "p50 latency (ms)"],
  ["p95_latency", "p95 latency (ms)"],
  ["p99_latency", "p99 latency (ms)"],
  ["custom", "Custom metric (OTLP)"],
];
const AGGREGATIONS: AlertAggregation[] = ["avg", "min", "max", "sum", "last", "count"];

/** "error_count", or "avg(queue.depth)" for a custom metric. */
function metricLabel(r: AlertRule): string {
  return r.metric === "custom" ? `${r.aggregation ?? "avg"}(${r.metric_name ?? "?"})` : r.metric;
}
const COMPARATORS: [Comparator, string][] = [
  ["gt", ">"],
  ["gte", "≥"],
  ["lt", "<"],
  ["lte", "≤"],
];
const SYMBOL: Record<string, string> = Object.fromEntries(COMPARATORS);

function duration(s: number): string {
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}

type Act = (p: Promise<Result<unknown>>) => Promise<boolean>;

function useAct(reload: () => void): [ApiError | null, Act] {
  const [error, setError] = useState<ApiError | null>(null);
  const act: Act = async (p) => {
    const r = await p;
    if (!r.ok) {
      setError(r.error);
      return false;
    }
    setError(null);
    reload();
    return true;
  };
  return [error, act];
}

function RuleForm({
  projectId,
  rule,
  conns,
  onDone,
}: {
  projectId: number;
  rule: AlertRule | null;
  conns: Connector[];
  onDone: () => void;
}) {
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <form
      class="card"
      aria-label={rule ? `Edit rule ${rule.name}` : "New rule"}
      onSubmit={async (e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const filter = String(f.get("filter") ?? "").trim();
        const metric = String(f.get("metric")) as AlertMetric;
        const custom = metric === "custom";
        const body: AlertRuleInput = {
          name: String(f.get("name") ?? ""),
          metric,
          ...(custom
            ? { metric_name: String(f.get("metric_name") ?? "").trim(), aggregation: String(f.get("aggregation")) as AlertAggregation }
            : {}),
          comparator: String(f.get("comparator")) as Comparator,
          threshold: Number(f.get("threshold")),
          window_s: Number(f.get("window_s")),
          cooldown_s: Number(f.get("cooldown_s")),
          filter: filter === "" || custom ? null : filter,
          connector_ids: f.getAll("connector").map(Number),
        };
        const r = rule ? await alerts.update(rule.id, body) : await alerts.create({ ...body, project_id: projectId });
        if (!r.ok) return setError(r.error);
        onDone();
      }}
    >
      <h2>{rule ? `Edit “${rule.name}”` : "New rule"}</h2>
      <div class="form-grid">
        <Field label="Name" name="name" required maxLength={255} defaultValue={rule?.name} />
        <div class="field">
          <label for="f-metric">Metric</label>
          <select id="f-metric" name="metric" defaultValue={rule?.metric ?? "error_count"}>
            {METRICS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <Field
          label="Metric name"
          name="metric_name"
          maxLength={255}
          defaultValue={rule?.metric_name ?? ""}
          placeholder="e.g. queue.depth"
          hint="Custom metric only: the OTLP metric's name."
        />
        <div class="field">
          <label for="f-aggregation">Aggregation</label>
          <select id="f-aggregation" name="aggregation" defaultValue={rule?.aggregation ?? "avg"}>
            {AGGREGATIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-comparator">Comparator</label>
          <select id="f-comparator" name="comparator" defaultValue={rule?.comparator ?? "gte"}>
            {COMPARATORS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <Field label="Threshold" name="threshold" type="number" step="any" required defaultValue={rule ? String(rule.threshold) : ""} />
        <Field label="Window (s)" name="window_s" type="number" min={60} max={86400} required defaultValue={String(rule?.window_s ?? 300)} />
        <Field label="Cool-down (s)" name="cooldown_s" type="number" min={0} max={604800} required defaultValue={String(rule?.cooldown_s ?? 900)} />
        <div class="wide">
          <Field
            label="Filter"
            name="filter"
            value={rule?.filter ?? ""}
            placeholder='e.g. level:error service:"api"'
            hint="Optional: the search language, applied before the metric."
          />
        </div>
        <fieldset class="wide">
          <legend>Connectors</legend>
          {conns.length === 0 ? <span class="muted">No connectors yet (create one below).</span> : null}
          {conns.map((c) => (
            <label key={c.id}>
              <input type="checkbox" name="connector" value={String(c.id)} defaultChecked={rule ? rule.connector_ids.includes(c.id) : undefined} /> {c.name} (
              {c.kind})
            </label>
          ))}
        </fieldset>
      </div>
      <ErrorLine error={error} />
      <button type="submit" class="primary">
        {rule ? "Save rule" : "Create rule"}
      </button>{" "}
      <button type="button" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}

function Rules({ projectId, conns }: { projectId: number; conns: Connector[] }) {
  const list = useApi(() => alerts.rules(projectId), [projectId]);
  const [editing, setEditing] = useState<AlertRule | "new" | null>(null);
  const [error, act] = useAct(list.reload);
  return (
    <section aria-labelledby="rules-h">
      <div class="page-head">
        <h2 id="rules-h">Rules</h2>
        <div class="actions">
          <button type="button" class="primary" onClick={() => setEditing("new")}>
            New rule
          </button>
        </div>
      </div>
      {editing ? (
        <RuleForm
          key={editing === "new" ? "new" : editing.id}
          projectId={projectId}
          rule={editing === "new" ? null : editing}
          conns={conns}
          onDone={() => {
            setEditing(null);
            list.reload();
          }}
        />
      ) : null}
      <ErrorLine error={error ?? list.error} />
      {list.data && list.data.rules.length === 0 ? <p class="card empty">No rules in this project.</p> : null}
      {list.data && list.data.rules.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Alert rules</caption>
          <thead>
            <tr>
              <th>Rule</th>
              <th>Condition</th>
              <th>State</th>
              <th>Last value</th>
              <th>Last fired</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.rules.map((r) => (
              <tr key={r.id} data-testid="rule-row">
                <td>
                  {r.name}
                  {r.enabled ? null : <span class="badge"> disabled</span>}
                  {r.filter ? <div class="muted">{r.filter}</div> : null}
                </td>
                <td>
                  {metricLabel(r)} {SYMBOL[r.comparator] ?? r.comparator} {r.threshold} over {duration(r.window_s)}; cool-down {duration(r.cooldown_s)}
                </td>
                <td class={`state-${r.state}`}>{r.state}</td>
                <td>{r.last_value === null ? "—" : `${r.last_value} ${r.unit === "percent" ? "%" : r.unit === "ms" ? "ms" : ""}`}</td>
                <td>
                  <Time iso={r.last_fired_at} />
                </td>
                <td class="actions">
                  <button type="button" onClick={() => setEditing(r)} aria-label={`Edit rule ${r.name}`}>
                    Edit
                  </button>
                  <button type="button" onClick={() => void act(alerts.setEnabled(r.id, !r.enabled))} aria-label={`${r.enabled ? "Disable" : "Enable"} rule ${r.name}`}>
                    {r.enabled ? "Disable" : "Enable"}
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete rule ${r.name}`}
                    onClick={() => {
                      if (confirm(`Delete the rule “${r.name}” and its history?`)) void act(alerts.remove(r.id));
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

function History({ projectId }: { projectId: number }) {
  const list = useApi(() => alerts.history(projectId, 50), [projectId]);
  const [error, act] = useAct(list.reload);
  return (
    <section aria-labelledby="history-h">
      <h2 id="history-h">History</h2>
      <ErrorLine error={error ?? list.error} />
      {list.data && list.data.events.length === 0 ? <p class="muted">No rule has fired yet.</p> : null}
      {list.data && list.data.events.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Alert history</caption>
          <thead>
            <tr>
              <th>Rule</th>
              <th>Status</th>
              <th>Value</th>
              <th>Fired</th>
              <th>Resolved</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.events.map((ev) => (
              <tr key={ev.id} data-testid="history-row">
                <td>{ev.rule_name}</td>
                <td class={`state-${ev.status}`}>{ev.status}</td>
                <td>
                  {ev.value} ({SYMBOL[ev.comparator] ?? ev.comparator} {ev.threshold})
                </td>
                <td>
                  <Time iso={ev.fired_at} />
                </td>
                <td>
                  <Time iso={ev.resolved_at} />
                </td>
                <td class="actions">
                  {ev.acked_at ? (
                    <span class="muted">acknowledged</span>
                  ) : (
                    <button type="button" onClick={() => void act(alerts.ack(ev.id))}>
                      Ack
                    </button>
                  )}
                  {ev.snoozed_until && Date.parse(ev.snoozed_until) > Date.now() ? (
                    <span class="muted">
                      snoozed until <Time iso={ev.snoozed_until} />
                    </span>
                  ) : (
                    <button type="button" onClick={() => void act(alerts.snooze(ev.id, 60))}>
                      Snooze 1 h
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function Connectors({ list, reload }: { list: Connector[] | null; reload: () => void }) {
  const [error, act] = useAct(reload);
  const [kind, setKind] = useState<ConnectorKind>("in_app");
  const [tested, setTested] = useState<string | null>(null);
  return (
    <section aria-labelledby="conn-h">
      <h2 id="conn-h">Connectors</h2>
      <p class="muted">Where rules and monitors send notifications; they belong to your account, for every project.</p>
      <form
        class="card"
        aria-label="New connector"
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const f = new FormData(form);
          const config: Record<string, unknown> = {};
          if (kind === "webhook") {
            config.url = String(f.get("url") ?? "");
            const secret = String(f.get("secret") ?? "");
            if (secret) config.secret = secret;
          } else if (kind === "email") {
            config.to = String(f.get("to") ?? "")
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean);
          }
          if (await act(connectors.create({ name: String(f.get("name") ?? ""), kind, config }))) form.reset();
        }}
      >
        <div class="form-grid">
          <Field label="Connector name" name="name" required maxLength={255} />
          <div class="field">
            <label for="f-kind">Kind</label>
            <select id="f-kind" name="kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as ConnectorKind)}>
              <option value="in_app">In-app (inbox)</option>
              <option value="webhook">Webhook</option>
              <option value="email">E-mail</option>
            </select>
          </div>
          {kind === "webhook" ? (
            <>
              <Field label="URL" name="url" type="url" required placeholder="http://hooks.internal/ledger" />
              <Field label="Signing secret" name="secret" minLength={16} maxLength={256} hint="Optional, 16–256 characters." />
            </>
          ) : null}
          {kind === "email" ? <Field label="To" name="to" required hint="Addresses, comma-separated." /> : null}
        </div>
        <button type="submit" class="primary">
          Create connector
        </button>
      </form>
      <ErrorLine error={error} />
      {tested ? (
        <p class="notice" role="status">
          {tested}
        </p>
      ) : null}
      {list && list.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Connectors</caption>
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Target</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((c) => (
              <tr key={c.id} data-testid="connector-row">
                <td>
                  {c.name}
                  {c.enabled ? null : <span class="badge"> disabled</span>}
                </td>
                <td>{c.kind}</td>
                <td>{typeof c.config.url === "string" ? c.config.url : Array.isArray(c.config.to) ? c.config.to.join(", ") : "inbox"}</td>
                <td class="actions">
                  <button
                    type="button"
                    aria-label={`Test connector ${c.name}`}
                    onClick={async () => {
                      const r = await connectors.test(c.id);
                      if (!r.ok) return setTested(null), void act(Promise.resolve(r));
                      const t = r.value;
                      // An in_app test lands in the inbox: the bell re-reads its count.
                      if (c.kind === "in_app") window.dispatchEvent(new Event(INBOX_CHANGED));
                      setTested(
                        t.success
                          ? `Test of “${c.name}” delivered.`
                          : `Test of “${c.name}” ${t.skipped ? "skipped" : "failed"}${t.error ? `: ${t.error}` : ""}.`,
                      );
                    }}
                  >
                    Test
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete connector ${c.name}`}
                    onClick={() => {
                      if (confirm(`Delete the connector “${c.name}”?`)) void act(connectors.remove(c.id));
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

function Windows({ projectId }: { projectId: number }) {
  const list = useApi(() => alerts.windows(projectId), [projectId]);
  const [error, act] = useAct(list.reload);
  return (
    <section aria-labelledby="mw-h">
      <h2 id="mw-h">Maintenance windows</h2>
      <p class="muted">While a window is active, the project's rules do not fire.</p>
      <form
        class="card"
        aria-label="New maintenance window"
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const f = new FormData(form);
          const iso = (v: FormDataEntryValue | null) => new Date(String(v ?? "")).toISOString();
          const reason = String(f.get("reason") ?? "").trim();
          if (
            await act(
              alerts.createWindow({ project_id: projectId, starts_at: iso(f.get("starts_at")), ends_at: iso(f.get("ends_at")), ...(reason ? { reason } : {}) }),
            )
          )
            form.reset();
        }}
      >
        <div class="form-grid">
          <Field label="Starts" name="starts_at" type="datetime-local" required />
          <Field label="Ends" name="ends_at" type="datetime-local" required />
          <Field label="Reason" name="reason" maxLength={255} />
        </div>
        <button type="submit" class="primary">
          Add window
        </button>
      </form>
      <ErrorLine error={error ?? list.error} />
      {list.data && list.data.windows.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Maintenance windows</caption>
          <thead>
            <tr>
              <th>Starts</th>
              <th>Ends</th>
              <th>Reason</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.windows.map((w) => (
              <tr key={w.id} data-testid="window-row">
                <td>
                  <Time iso={w.starts_at} /> {w.active ? <span class="badge badge-active">active</span> : null}
                </td>
                <td>
                  <Time iso={w.ends_at} />
                </td>
                <td>{w.reason ?? ""}</td>
                <td>
                  <button type="button" class="danger" onClick={() => void act(alerts.removeWindow(w.id))}>
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

export function Alerts() {
  const projectId = useProjectId();
  const conns = useApi(() => connectors.list(), []);
  if (projectId === null) return <NeedProject />;
  const list = conns.data?.connectors ?? [];
  return (
    <section class="page">
      <div class="page-head">
        <h1>Alerts</h1>
      </div>
      <ErrorLine error={conns.error} />
      <Rules projectId={projectId} conns={list} />
      <History projectId={projectId} />
      <Connectors list={conns.data ? list : null} reload={conns.reload} />
      <Windows projectId={projectId} />
    </section>
  );
}
