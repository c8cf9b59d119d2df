// Live error toasts, on every page while signed in, from the notification stream.
import { useEffect, useState } from "preact/hooks";
import { openNotifications, type ErrorNotification } from "../stream/notifications";
import { useProjects } from "../state/projects";
import { Link } from "./Link";

interface Toast extends ErrorNotification {
  key: number;
}

const MAX_TOASTS = 4;
const TOAST_MS = 10000;

export function Toasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [connected, setConnected] = useState(false);
  const { projects } = useProjects();
  useEffect(() => {
    let seq = 0;
    const timers = new Set<number>();
    const handle = openNotifications(
      (n) => {
        const key = ++seq;
        setToasts((ts) => [...ts.slice(-(MAX_TOASTS - 1)), { ...n, key }]);
        const t = window.setTimeout(() => {
          timers.delete(t);
          setToasts((ts) => ts.filter((x) => x.key !== key));
        }, TOAST_MS);
        timers.add(t);
      },
      setConnected,
    );
    return () => {
      handle.close();
      for (const t of timers) window.clearTimeout(t);
    };
  }, []);
  const projectName = (id: number) => projects?.find((p) => p.project_id === id)?.name ?? `project ${id}`;
  return (
    <section class="toasts" aria-live="polite" aria-label="Live error notifications" data-stream={connected ? "connected" : "down"}>
      {toasts.map((t) => (
        <div key={t.key} class={`toast toast-${t.kind}`} role="status" data-testid="toast">
          <div class="toast-head">
            <strong>{t.kind === "regression" ? "Regression" : t.level === "critical" ? "Critical error" : "New error"}</strong>
            <span class="muted"> in {projectName(t.project_id)}</span>
            <button
              type="button"
              class="ghost toast-close"
              aria-label="Dismiss notification"
              onClick={() => setToasts((ts) => ts.filter((x) => x.key !== t.key))}
            >
              ×
            </button>
          </div>
          <p class="toast-body">
            {t.error_type ? <code>{t.error_type}</code> : null} {t.message}
          </p>
          <Link
            to={t.group_id !== null ? `/errors/${t.group_id}?project=${t.project_id}` : `/errors?project=${t.project_id}`}
          >
            View errors
          </Link>
        </div>
      ))}
    </section>
  );
}
