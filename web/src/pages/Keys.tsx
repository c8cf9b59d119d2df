// API keys of the current project: create (the full key is shown once), list, revoke.
import { useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import type { ApiKeyList, CreatedKey } from "../api/types";
import { CopyButton } from "../components/CopyButton";
import { FirstLog } from "../components/FirstLog";
import { ErrorLine, Field } from "../components/Form";
import { NeedProject } from "../components/NeedProject";
import { Time } from "../components/Time";
import { useApi } from "../components/useApi";
import { useCurrentProject } from "../state/projects";
import { useParam } from "../state/url";

export function Keys() {
  const project = useCurrentProject();
  const pid = project?.project_id ?? null;
  const fresh = useParam("new") === "1";
  const keys = useApi(pid === null ? null : () => api.get<ApiKeyList>(`/api/v1/projects/${pid}/api-keys`), [pid]);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  if (!project || pid === null) return <NeedProject />;
  return (
    <section class="page">
      <div class="page-head">
        <h1>API keys · {project.name}</h1>
      </div>
      {fresh && !created ? (
        <p class="notice" role="status">
          Project created. Create an API key to start sending logs.
        </p>
      ) : null}
      <form
        class="card"
        aria-labelledby="new-key"
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const name = String(new FormData(form).get("name") ?? "");
          setBusy(true);
          const r = await api.post<CreatedKey>(`/api/v1/projects/${pid}/api-keys`, { name });
          setBusy(false);
          if (!r.ok) return setError(r.error);
          setError(null);
          setCreated(r.value);
          form.reset();
          keys.reload();
        }}
      >
        <h2 id="new-key">New key</h2>
        <div class="row">
          <Field label="Key name" id="key-name" name="name" required maxLength={255} placeholder="e.g. production" autoFocus={fresh} />
          <button type="submit" class="primary" disabled={busy}>
            Create key
          </button>
        </div>
        <ErrorLine error={error} />
      </form>
      {created ? (
        <section class="card" aria-labelledby="created-title" data-testid="created-key">
          <h2 id="created-title">Your new key</h2>
          <p class="notice" role="status">
            Copy it now: it is shown only once and cannot be recovered.
          </p>
          <div class="secret">
            <code data-testid="full-key">{created.full_key}</code>
            <CopyButton text={created.full_key} label="Copy key" />
          </div>
        </section>
      ) : null}
      {created ? <FirstLog projectId={pid} apiKey={created.full_key} /> : null}
      <ErrorLine error={keys.error} />
      {keys.data ? (
        keys.data.api_keys.length === 0 ? (
          <p class="empty">No keys yet.</p>
        ) : (
          <table class="data">
            <caption class="visually-hidden">API keys of {project.name}</caption>
            <thead>
              <tr>
                <th>Name</th>
                <th>Prefix</th>
                <th>Status</th>
                <th>Created</th>
                <th>Last used</th>
                <th>
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.api_keys.map((k) => (
                <tr key={k.key_id} data-testid="key-row">
                  <td>{k.name}</td>
                  <td>
                    <code>{k.key_prefix}…</code>
                  </td>
                  <td>
                    <span class={`badge badge-${k.status}`}>{k.status}</span>
                  </td>
                  <td>
                    <Time iso={k.created_at} />
                  </td>
                  <td>{k.last_used_at ? <Time iso={k.last_used_at} /> : <span class="muted">never</span>}</td>
                  <td>
                    {k.status === "active" ? (
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Revoke key ${k.name}`}
                        onClick={async () => {
                          if (!confirm(`Revoke the key "${k.name}"? Clients using it stop working within a second.`)) return;
                          const r = await api.del<unknown>(`/api/v1/api-keys/${k.key_id}`);
                          if (!r.ok) setError(r.error);
                          keys.reload();
                        }}
                      >
                        Revoke
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : keys.loading ? (
        <p class="muted">Loading keys…</p>
      ) : null}
    </section>
  );
}
