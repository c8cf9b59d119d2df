// One error group: status actions, hourly occurrences over 24 h, the sample stack trace and log.
import { useMemo, useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import type { ErrorGroup, ErrorGroupDetail, GroupStatus } from "../api/types";
import { Chart } from "../components/Chart";
import { ErrorLine } from "../components/Form";
import { Link } from "../components/Link";
import { NeedProject } from "../components/NeedProject";
import { Time } from "../components/Time";
import { count, dateTime } from "../components/format";
import { useApi } from "../components/useApi";
import { useCurrentProject } from "../state/projects";
import { StatusBadge, missingApi } from "./Errors";

const ACTIONS: { status: GroupStatus; label: string; hint: string }[] = [
  { status: "resolved", label: "Resolve", hint: "Fixed: a new occurrence reopens it as a regression" },
  { status: "ignored", label: "Ignore", hint: "Not worth fixing: hidden from the default list" },
  { status: "muted", label: "Mute", hint: "Keep counting, but no notifications" },
  { status: "unresolved", label: "Reopen", hint: "Back to the unresolved list" },
];

function HourlyChart({ hourly }: { hourly: ErrorGroupDetail["hourly"] }) {
  const x = useMemo(() => hourly.map((h) => Math.floor(Date.parse(h.timestamp) / 1000)), [hourly]);
  const series = useMemo(
    () => [{ spec: { label: "Occurrences", color: "--lvl-error", bars: true }, values: hourly.map((h) => h.count) }],
    [hourly],
  );
  return <Chart x={x} series={series} height={180} label="Occurrences per hour over the last 24 hours" />;
}

export function ErrorDetail({ params }: { params: Record<string, string> }) {
  const project = useCurrentProject();
  const pid = project?.project_id ?? null;
  const id = params.id ?? "";
  const group = useApi(
    pid === null ? null : () => api.get<ErrorGroupDetail>(`/api/v1/error-groups/${encodeURIComponent(id)}`, { project_id: pid }),
    [pid, id],
  );
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [release, setRelease] = useState("");
  if (!project || pid === null) return <NeedProject />;
  if (group.error)
    return (
      <section class="page">
        <p>
          <Link to="/errors">← Errors</Link>
        </p>
        {missingApi(group.error) ? <p class="notice">This server does not provide error groups yet.</p> : <ErrorLine error={group.error} />}
      </section>
    );
  const g = group.data;
  if (!g) return <p class="muted">Loading…</p>;
  const setStatus = async (status: GroupStatus) => {
    setBusy(true);
    const body: { status: GroupStatus; resolved_in_release?: string } = { status };
    if (status === "resolved" && release.trim()) body.resolved_in_release = release.trim();
    const r = await api.patch<ErrorGroup>(`/api/v1/error-groups/${g.id}/status`, body, { project_id: pid });
    setBusy(false);
    if (!r.ok) return setActionError(r.error);
    setActionError(null);
    group.reload();
  };
  const stack = g.sample_stack_trace ?? g.sample_log?.stack_trace ?? null;
  const log = g.sample_log;
  return (
    <section class="page" data-testid="error-detail">
      <p>
        <Link to="/errors">← Errors</Link>
      </p>
      <div class="page-head">
        <h1>
          <code>{g.error_type ?? "Error"}</code>
        </h1>
        <span data-testid="group-status">
          <StatusBadge group={g} />
        </span>
      </div>
      <p class="error-message">{g.error_message}</p>
      <div class="card">
        <dl class="keyvalue">
          <dt>Occurrences</dt>
          <dd>{count(g.occurrence_count)}</dd>
          <dt>First seen</dt>
          <dd>
            <Time iso={g.first_seen} /> <span class="muted">({dateTime(g.first_seen)})</span>
          </dd>
          <dt>Last seen</dt>
          <dd>
            <Time iso={g.last_seen} /> <span class="muted">({dateTime(g.last_seen)})</span>
          </dd>
          {g.resolved_at ? (
            <>
              <dt>Resolved</dt>
              <dd>
                <Time iso={g.resolved_at} />
                {g.resolved_in_release ? ` in ${g.resolved_in_release}` : ""}
              </dd>
            </>
          ) : null}
          {g.regressed_at ? (
            <>
              <dt>Regressed</dt>
              <dd>
                <Time iso={g.regressed_at} />
              </dd>
            </>
          ) : null}
          <dt>Fingerprint</dt>
          <dd>
            <code>{g.fingerprint}</code>
          </dd>
        </dl>
      </div>
      <div class="card" role="group" aria-label="Change status">
        <div class="row">
          {g.status !== "resolved" ? (
            <label class="inline-field">
              Resolved in release (optional)
              <input value={release} onInput={(e) => setRelease(e.currentTarget.value)} placeholder="e.g. 1.4.2" maxLength={100} />
            </label>
          ) : null}
          {ACTIONS.filter((a) => a.status !== g.status).map((a) => (
            <button
              key={a.status}
              type="button"
              class={a.status === "resolved" ? "primary" : undefined}
              title={a.hint}
              disabled={busy}
              onClick={() => void setStatus(a.status)}
            >
              {a.label}
            </button>
          ))}
          <span class="spacer" />
          <Link to={`/logs?q=${encodeURIComponent(`fingerprint:${g.fingerprint}`)}&range=24h`}>Show matching logs</Link>
        </div>
        <ErrorLine error={actionError} />
      </div>
      <h2>Last 24 hours</h2>
      <div class="card">
        <HourlyChart hourly={g.hourly} />
      </div>
      <h2>Stack trace</h2>
      {stack ? <pre class="stack" data-testid="stack-trace">{stack}</pre> : <p class="muted">No stack trace in the sample.</p>}
      {log ? (
        <>
          <h2>Sample event</h2>
          <div class="card">
            <dl class="keyvalue">
              <dt>Time</dt>
              <dd>{dateTime(log.timestamp)}</dd>
              <dt>Level</dt>
              <dd>{log.level}</dd>
              <dt>Type</dt>
              <dd>{log.log_type}</dd>
              {log.message ? (
                <>
                  <dt>Message</dt>
                  <dd>{log.message}</dd>
                </>
              ) : null}
              {log.environment ? (
                <>
                  <dt>Environment</dt>
                  <dd>{log.environment}</dd>
                </>
              ) : null}
              {log.release ? (
                <>
                  <dt>Release</dt>
                  <dd>{log.release}</dd>
                </>
              ) : null}
              {log.platform ? (
                <>
                  <dt>Platform</dt>
                  <dd>
                    {log.platform} {log.platform_version ?? ""}
                  </dd>
                </>
              ) : null}
            </dl>
            {log.attributes ? (
              <>
                <h3>Attributes</h3>
                <pre>{JSON.stringify(log.attributes, null, 2)}</pre>
              </>
            ) : null}
          </div>
        </>
      ) : null}
    </section>
  );
}
