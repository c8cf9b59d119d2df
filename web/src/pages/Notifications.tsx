// Notification preferences: which errors the live stream (toasts) delivers, per project.
import { useEffect, useState } from "preact/hooks";
import { api, type ApiError } from "../api/client";
import { LEVELS, LOG_TYPES, type NotificationPrefs, type ProjectPrefs } from "../api/types";
import { ErrorLine } from "../components/Form";
import { useApi } from "../components/useApi";
import { useProjects } from "../state/projects";

const DEFAULT: ProjectPrefs = { enabled: true, levels: [], types: [] };

function toggle(list: string[], v: string, on: boolean): string[] {
  const s = new Set(list);
  if (on) s.add(v);
  else s.delete(v);
  return [...s];
}

function Choices({ legend, all, chosen, onChange, disabled }: { legend: string; all: readonly string[]; chosen: string[]; onChange: (v: string[]) => void; disabled: boolean }) {
  return (
    <fieldset class="choices" disabled={disabled}>
      <legend>
        {legend} <span class="muted">{chosen.length === 0 ? "(all)" : ""}</span>
      </legend>
      {all.map((v) => (
        <label key={v} class="check">
          <input type="checkbox" checked={chosen.includes(v)} onChange={(e) => onChange(toggle(chosen, v, e.currentTarget.checked))} />
          {v}
        </label>
      ))}
    </fieldset>
  );
}

export function Notifications() {
  const { projects } = useProjects();
  const loaded = useApi(() => api.get<NotificationPrefs>("/api/v1/notifications/preferences"), []);
  const [prefs, setPrefs] = useState<NotificationPrefs | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (loaded.data) setPrefs(loaded.data);
  }, [loaded.data]);
  if (!prefs || !projects) return loaded.error ? <ErrorLine error={loaded.error} /> : <p class="muted">Loading…</p>;
  const projectPrefs = (id: number) => prefs.projects[String(id)] ?? DEFAULT;
  const update = (id: number, p: ProjectPrefs) => {
    setSaved(false);
    setPrefs({ ...prefs, projects: { ...prefs.projects, [String(id)]: p } });
  };
  return (
    <section class="page">
      <div class="page-head">
        <h1>Notifications</h1>
      </div>
      <p class="muted">
        Error, critical and exception logs appear as live notifications in this dashboard. Choose which ones. No level or type
        ticked means all of them.
      </p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const r = await api.put<NotificationPrefs>("/api/v1/notifications/preferences", prefs);
          if (!r.ok) {
            setSaved(false);
            return setError(r.error);
          }
          setError(null);
          setPrefs(r.value);
          setSaved(true);
        }}
      >
        <div class="card">
          <label class="check">
            <input
              type="checkbox"
              checked={prefs.enabled}
              onChange={(e) => {
                setSaved(false);
                setPrefs({ ...prefs, enabled: e.currentTarget.checked });
              }}
            />
            <strong>Live notifications on</strong>
          </label>
        </div>
        {projects.map((p) => {
          const pp = projectPrefs(p.project_id);
          return (
            <fieldset key={p.project_id} class="card" disabled={!prefs.enabled}>
              <legend>{p.name}</legend>
              <label class="check">
                <input type="checkbox" checked={pp.enabled} onChange={(e) => update(p.project_id, { ...pp, enabled: e.currentTarget.checked })} />
                Notify for this project
              </label>
              <div class="row">
                <Choices legend="Levels" all={LEVELS} chosen={pp.levels} disabled={!pp.enabled} onChange={(levels) => update(p.project_id, { ...pp, levels })} />
                <Choices legend="Log types" all={LOG_TYPES} chosen={pp.types} disabled={!pp.enabled} onChange={(types) => update(p.project_id, { ...pp, types })} />
              </div>
            </fieldset>
          );
        })}
        <div class="row">
          <button type="submit" class="primary">
            Save preferences
          </button>
          {saved ? (
            <span class="notice notice-ok" role="status">
              Saved
            </span>
          ) : null}
        </div>
        <ErrorLine error={error} />
      </form>
    </section>
  );
}
