// Projects: list with today's usage against the quota, create, and edit name / retention / quota.
import { Fragment } from "preact";
import { useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import type { Project, Quota } from "../api/types";
import { ErrorLine, Field } from "../components/Form";
import { Link } from "../components/Link";
import { count } from "../components/format";
import { useApi } from "../components/useApi";
import { useProjects } from "../state/projects";
import { navigate, setParams, useParam } from "../state/url";

function slugify(name: string): string {
  return name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 60);
}

function UsageMeter({ projectId }: { projectId: number }) {
  const q = useApi(() => api.get<Quota>(`/api/v1/projects/${projectId}/quota`), [projectId]);
  if (q.error) return <span class="error">{q.error.detail}</span>;
  if (!q.data) return <span class="muted">…</span>;
  const { daily_usage, daily_quota } = q.data;
  const pct = daily_quota > 0 ? Math.min(100, (daily_usage / daily_quota) * 100) : 0;
  return (
    <div class="usage">
      <div
        class={`meter${daily_usage >= daily_quota ? " over" : ""}`}
        role="meter"
        aria-label="Today's usage against the daily quota"
        aria-valuemin={0}
        aria-valuemax={daily_quota}
        aria-valuenow={daily_usage}
      >
        <span
          ref={(el) => {
            if (el) el.style.width = `${pct}%`;
          }}
        />
      </div>
      <small class="muted">
        {count(daily_usage)} / {count(daily_quota)} today ({pct < 1 && daily_usage > 0 ? "<1" : Math.round(pct)}%)
      </small>
    </div>
  );
}

function CreateProject({ onCreated }: { onCreated: (p: Project) => void }) {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugTouched, setSlugTouched] = useState(false);
  const [env, setEnv] = useState("production");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card"
      aria-labelledby="new-project"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        const r = await api.post<Project>("/api/v1/projects", { name, slug: slug || slugify(name), environment: env });
        setBusy(false);
        if (!r.ok) return setError(r.error);
        setError(null);
        setName("");
        setSlug("");
        setSlugTouched(false);
        onCreated(r.value);
      }}
    >
      <h2 id="new-project">New project</h2>
      <div class="row">
        <Field
          label="Name"
          id="project-name"
          required
          maxLength={255}
          value={name}
          onInput={(e) => {
            const v = e.currentTarget.value;
            setName(v);
            if (!slugTouched) setSlug(slugify(v));
          }}
        />
        <Field
          label="Slug"
          id="project-slug"
          required
          pattern="[a-z0-9-]+"
          title="Lower-case letters, digits and hyphens"
          value={slug}
          onInput={(e) => {
            setSlugTouched(true);
            setSlug(e.currentTarget.value);
          }}
        />
        <div class="field">
          <label for="project-env">Environment</label>
          <select id="project-env" value={env} onChange={(e) => setEnv(e.currentTarget.value)}>
            <option value="production">production</option>
            <option value="staging">staging</option>
            <option value="dev">dev</option>
          </select>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Create project
        </button>
      </div>
      <ErrorLine error={error} />
    </form>
  );
}

function EditProject({ project, onSaved }: { project: Project; onSaved: () => void }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  const pid = project.project_id;
  return (
    <form
      class="edit-project"
      aria-label={`Settings of ${project.name}`}
      onSubmit={async (e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const r = await api.patch<Project>(`/api/v1/projects/${pid}`, {
          name: String(f.get("name") ?? ""),
          retention_days: Number(f.get("retention_days")),
          daily_quota: Number(f.get("daily_quota")),
        });
        if (!r.ok) {
          setSaved(false);
          return setError(r.error);
        }
        setError(null);
        setSaved(true);
        onSaved();
      }}
    >
      <div class="row">
        <Field label="Name" id={`name-${pid}`} name="name" required maxLength={255} defaultValue={project.name} />
        <Field
          label="Retention (days)"
          id={`retention-${pid}`}
          name="retention_days"
          type="number"
          min={1}
          max={365}
          required
          defaultValue={String(project.retention_days)}
        />
        <Field
          label="Daily quota (logs)"
          id={`quota-${pid}`}
          name="daily_quota"
          type="number"
          min={1000}
          required
          defaultValue={String(project.daily_quota)}
        />
        <button type="submit">Save</button>
        {saved ? (
          <span class="notice notice-ok" role="status">
            Saved
          </span>
        ) : null}
      </div>
      <ErrorLine error={error} />
    </form>
  );
}

export function Projects() {
  const { projects, error, reload } = useProjects();
  const editing = useParam("edit");
  const welcome = projects !== null && projects.length === 0;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Projects</h1>
      </div>
      {welcome ? (
        <p class="notice" role="status">
          Welcome! Create a project to start sending logs: each project has its own API keys, quota and retention.
        </p>
      ) : null}
      <CreateProject
        onCreated={async (p) => {
          await reload();
          // Straight to the new project's keys: a key is what the first log needs.
          navigate(`/keys?project=${p.project_id}&new=1`);
        }}
      />
      <ErrorLine error={error} />
      {projects && projects.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Your projects</caption>
          <thead>
            <tr>
              <th>Name</th>
              <th>Slug</th>
              <th>Environment</th>
              <th class="num">Retention</th>
              <th>Today's usage</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {projects.map((p) => (
              <Fragment key={p.project_id}>
                <tr data-testid="project-row">
                  <td>
                    <Link to={`/logs?project=${p.project_id}`}>{p.name}</Link>
                  </td>
                  <td>
                    <code>{p.slug}</code>
                  </td>
                  <td>{p.environment}</td>
                  <td class="num">{p.retention_days} d</td>
                  <td>
                    <UsageMeter projectId={p.project_id} />
                  </td>
                  <td class="actions-cell">
                    <button
                      type="button"
                      aria-expanded={editing === String(p.project_id)}
                      aria-label={`Edit ${p.name}`}
                      onClick={() => setParams({ edit: editing === String(p.project_id) ? null : p.project_id }, { replace: true })}
                    >
                      Edit
                    </button>{" "}
                    <Link to={`/keys?project=${p.project_id}`}>Keys</Link>
                  </td>
                </tr>
                {editing === String(p.project_id) ? (
                  <tr>
                    <td colSpan={6}>
                      <EditProject project={p} onSaved={() => void reload()} />
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
