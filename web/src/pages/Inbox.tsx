// The account's in-app notifications (written by in_app connectors: alerts, monitors, tests),
// newest first: mark read, mark all read, delete. The header's bell shows the unread count.
import { useEffect, useState } from "preact/hooks";
import { inbox, type ApiError } from "../api/client";
import { ErrorLine } from "../components/Form";
import { INBOX_CHANGED } from "../components/InboxBell";
import { Time } from "../components/Time";
import { useApi } from "../components/useApi";
import { onInboxNotification } from "../stream/notifications";

const KIND: Record<string, string> = {
  alert_firing: "Alert firing",
  alert_resolved: "Alert resolved",
  monitor_down: "Monitor down",
  monitor_up: "Monitor up",
  test: "Test",
};

function changed() {
  window.dispatchEvent(new Event(INBOX_CHANGED));
}

export function Inbox() {
  const [unreadOnly, setUnreadOnly] = useState(false);
  const list = useApi(() => inbox.list(100, 0, unreadOnly), [unreadOnly]);
  const [error, setError] = useState<ApiError | null>(null);
  const { reload } = list;
  useEffect(() => onInboxNotification(reload), [reload]);
  const act = async (p: Promise<{ ok: boolean; error?: ApiError }>) => {
    const r = await p;
    if (!r.ok && r.error) return setError(r.error);
    setError(null);
    reload();
    changed();
  };
  return (
    <section class="page">
      <div class="page-head">
        <h1>Inbox</h1>
        <div class="actions">
          <label>
            <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly((e.currentTarget as HTMLInputElement).checked)} /> Unread
            only
          </label>
          <button type="button" onClick={() => void act(inbox.readAll())} disabled={!list.data || list.data.unread === 0}>
            Mark all read
          </button>
        </div>
      </div>
      <p class="muted">Alerts and monitors notify here through an in-app connector (set one up on the Alerts page).</p>
      <ErrorLine error={error ?? list.error} />
      {list.data && list.data.notifications.length === 0 ? <p class="card empty">No notifications.</p> : null}
      {list.data && list.data.notifications.length > 0 ? (
        <table class="data">
          <caption class="visually-hidden">Notifications</caption>
          <thead>
            <tr>
              <th>Notification</th>
              <th>Kind</th>
              <th>When</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.notifications.map((n) => (
              <tr key={n.id} class={`inbox-item${n.read ? "" : " unread"}`} data-testid="inbox-row">
                <td class="inbox-title">
                  {n.read ? null : <span class="visually-hidden">Unread: </span>}
                  {n.title}
                </td>
                <td>{KIND[n.kind] ?? n.kind}</td>
                <td>
                  <Time iso={n.created_at} />
                </td>
                <td class="actions">
                  {n.read ? null : (
                    <button type="button" onClick={() => void act(inbox.read(n.id))} aria-label={`Mark read: ${n.title}`}>
                      Mark read
                    </button>
                  )}
                  <button type="button" class="danger" onClick={() => void act(inbox.remove(n.id))} aria-label={`Delete: ${n.title}`}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : list.loading ? (
        <p class="muted">Loading notifications…</p>
      ) : null}
    </section>
  );
}
