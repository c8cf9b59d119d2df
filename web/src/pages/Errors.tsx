// Error groups of the current project: status filter, text filter and sort in the URL, 24 h
// sparklines, regression badges, cursor paging ("Load more").
import { useEffect, useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import { GROUP_STATUSES, type ErrorGroup, type ErrorGroupList, type LogPage } from "../api/types";
import { FirstLog } from "../components/FirstLog";
import { ErrorLine } from "../components/Form";
import { Link } from "../components/Link";
import { NeedProject } from "../components/NeedProject";
import { Sparkline } from "../components/Sparkline";
import { Time } from "../components/Time";
import { count } from "../components/format";
import { useApi } from "../components/useApi";
import { useCurrentProject } from "../state/projects";
import { setParams, useLocation } from "../state/url";

const SORTS = [
  ["last_seen", "Last seen"],
  ["first_seen", "First seen"],
  ["count", "Occurrences"],
] as const;

export function StatusBadge({ group }: { group: Pick<ErrorGroup, "status" | "is_regression"> }) {
  return (
    <>
      <span class={`badge badge-${group.status}`}>{group.status}</span>
      {group.is_regression ? (
        <>
          {" "}
          <span class="badge badge-regression" data-testid="regression-badge" title="Resolved, then seen again">
            regression
          </span>
        </>
      ) : null}
    </>
  );
}

/** True when the error is the server's "no such route" (an older ledgerd without the API). */
export function missingApi(e: ApiError | null): boolean {
  return e !== null && e.status === 404 && e.detail === "Not Found";
}

function EmptyState({ projectId, filtered }: { projectId: number; filtered: boolean }) {
  const logs = useApi(() => api.get<LogPage>("/api/v1/logs", { project_id: projectId, limit: 1 }), [projectId]);
  if (filtered) return <p class="empty">No error group matches these filters.</p>;
  if (logs.data && logs.data.logs.length === 0) return <FirstLog projectId={projectId} />;
  return <p class="empty">No errors recorded in this project. Nice.</p>;
}

export function Errors() {
  const project = useCurrentProject();
  const pid = project?.project_id ?? null;
  const { params } = useLocation();
  const status = params.get("status") ?? "unresolved";
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? "last_seen";
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);

  const [extra, setExtra] = useState<ErrorGroup[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<ApiError | null>(null);
  const query = { project_id: pid, status: status === "all" ? undefined : status, q, sort, limit: 50 };
  const list = useApi(pid === null ? null : () => api.get<ErrorGroupList>("/api/v1/error-groups", query), [pid, status, q, sort]);
  useEffect(() => {
    setExtra([]);
    setCursor(list.data?.next_cursor ?? null);
  }, [list.data]);

  if (!project || pid === null) return <NeedProject />;
  const groups = list.data ? [...list.data.groups, ...extra] : [];
  const filtered = status !== "unresolved" || q !== "";
  return (
    <section class="page">
      <div class="page-head">
        <h1>Errors · {project.name}</h1>
        {list.data ? <span class="muted">{count(list.data.total)} {list.data.total === 1 ? "group" : "groups"}</span> : null}
      </div>
      <form
        class="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setParams({ q: text });
        }}
      >
        <label>
          Status
          <select value={status} onChange={(e) => setParams({ status: e.currentTarget.value === "unresolved" ? null : e.currentTarget.value })}>
            {GROUP_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
            <option value="all">all</option>
          </select>
        </label>
        <label>
          Search type or message
          <input type="search" data-search value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="e.g. KeyError" />
        </label>
        <label>
          Sort by
          <select value={sort} onChange={(e) => setParams({ sort: e.currentTarget.value === "last_seen" ? null : e.currentTarget.value })}>
            {SORTS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      {missingApi(list.error) ? (
        <p class="notice">This server does not provide error groups yet (no /api/v1/error-groups).</p>
      ) : (
        <ErrorLine error={list.error} />
      )}
      {list.data && groups.length === 0 ? <EmptyState projectId={pid} filtered={filtered} /> : null}
      {groups.length > 0 ? (
        <table class="data errors-table">
          <caption class="visually-hidden">Error groups</caption>
          <thead>
            <tr>
              <th>Error</th>
              <th class="num">Events</th>
              <th>Last 24 h</th>
              <th>First seen</th>
              <th>Last seen</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => (
              <tr key={g.id} data-testid="error-group">
                <td class="error-cell">
                  <Link to={`/errors/${g.id}`}>
                    <strong>{g.error_type ?? "Error"}</strong>
                  </Link>
                  <div class="muted ellipsis">{g.error_message ?? ""}</div>
                </td>
                <td class="num">{count(g.occurrence_count)}</td>
                <td>
                  <Sparkline values={g.sparkline} label={`Hourly occurrences of ${g.error_type ?? "error"}`} />
                </td>
                <td>
                  <Time iso={g.first_seen} />
                </td>
                <td>
                  <Time iso={g.last_seen} />
                </td>
                <td>
                  <StatusBadge group={g} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {cursor ? (
        <p>
          <button
            type="button"
            onClick={async () => {
              const r = await api.get<ErrorGroupList>("/api/v1/error-groups", { ...query, cursor });
              if (!r.ok) return setMoreError(r.error);
              setMoreError(null);
              setExtra((x) => [...x, ...r.value.groups]);
              setCursor(r.value.next_cursor);
            }}
          >
            Load more
          </button>
        </p>
      ) : null}
      <ErrorLine error={moreError} />
    </section>
  );
}
