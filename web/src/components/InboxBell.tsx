// The header's inbox bell: the unread count of in-app notifications, re-read when the stream
// delivers one (`notification` event) and when the inbox page changes something.
import { useEffect, useState } from "preact/hooks";
import { inbox } from "../api/client";
import { onInboxNotification } from "../stream/notifications";
import { Link } from "./Link";

/** Pages that mark or delete notifications dispatch this on `window` so the bell re-reads. */
export const INBOX_CHANGED = "ledger:inbox-changed";

export function InboxBell() {
  const [unread, setUnread] = useState<number | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      void inbox.unreadCount().then((r) => {
        if (live && r.ok) setUnread(r.value.unread_count);
      });
    load();
    const off = onInboxNotification(load);
    window.addEventListener(INBOX_CHANGED, load);
    return () => {
      live = false;
      off();
      window.removeEventListener(INBOX_CHANGED, load);
    };
  }, []);
  const n = unread ?? 0;
  const label = n === 0 ? "Inbox: no unread notifications" : `Inbox: ${n} unread notification${n === 1 ? "" : "s"}`;
  return (
    <Link to="/inbox" class="bell" aria-label={label} title={label} data-testid="inbox-bell">
      <svg class="bell-icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">
        <path
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"
          fill="currentColor"
        />
      </svg>
      {n > 0 ? (
        <span class="bell-count" data-testid="inbox-count" aria-hidden="true">
          {n > 99 ? "99+" : n}
        </span>
      ) : null}
    </Link>
  );
}
