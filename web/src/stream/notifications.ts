// The account's live error notifications (`GET /api/v1/notifications/stream`), read with the
// browser's EventSource and the `access_token` cookie. EventSource retries dropped connections
// by itself (sending Last-Event-ID); when the server refuses the stream (401 after the access
// token expired, 429 over the stream cap) it gives up, so we renew the session through the API
// client (which refreshes the cookie too) and reopen with a growing delay.
import { api } from "../api/client";

export interface ErrorNotification {
  kind: "error" | "regression";
  project_id: number;
  level: string | null;
  message: string;
  error_type: string | null;
  group_id: number | null;
  log_id: number | null;
  timestamp: string | null;
}

function str(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function parse(kind: ErrorNotification["kind"], data: string): ErrorNotification | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const project = num(o.project_id);
  if (project === null) return null;
  return {
    kind,
    project_id: project,
    level: str(o.level),
    message: str(o.error_message) ?? str(o.message) ?? "(no message)",
    error_type: str(o.error_type),
    group_id: num(o.group_id),
    log_id: num(o.log_id),
    timestamp: str(o.timestamp),
  };
}

// Inbox notifications (the stream's `notification` event, written by in_app connectors) go to
// every listener here, whichever component opened the stream: the header's bell counts them.
const inboxListeners = new Set<(data: unknown) => void>();

/** Calls `fn` with each inbox notification the open stream delivers; returns the unsubscribe. */
export function onInboxNotification(fn: (data: unknown) => void): () => void {
  inboxListeners.add(fn);
  return () => inboxListeners.delete(fn);
}

export interface StreamHandle {
  close(): void;
}

/** Opens the stream; `onEvent` gets each notification, `onState` whether it is connected. */
export function openNotifications(
  onEvent: (n: ErrorNotification) => void,
  onState: (connected: boolean) => void,
): StreamHandle {
  let es: EventSource | null = null;
  let closed = false;
  let delay = 1000;
  let timer: number | undefined;

  const connect = () => {
    if (closed) return;
    es = new EventSource("/api/v1/notifications/stream");
    es.addEventListener("connected", () => {
      delay = 1000;
      onState(true);
    });
    es.addEventListener("error_notification", (e) => {
      const n = parse("error", (e as MessageEvent<string>).data);
      if (n) onEvent(n);
    });
    es.addEventListener("error_regression", (e) => {
      const n = parse("regression", (e as MessageEvent<string>).data);
      if (n) onEvent(n);
    });
    es.addEventListener("notification", (e) => {
      let data: unknown = null;
      try {
        data = JSON.parse((e as MessageEvent<string>).data);
      } catch {
        /* the count is re-read anyway */
      }
      for (const fn of inboxListeners) fn(data);
    });
    es.onerror = () => {
      onState(false);
      if (es && es.readyState === EventSource.CLOSED) {
        es = null;
        timer = window.setTimeout(async () => {
          // Renews the access token (and its cookie) when it expired; harmless otherwise.
          await api.get("/api/v1/accounts/me");
          connect();
        }, delay);
        delay = Math.min(delay * 2, 30000);
      }
    };
  };
  connect();
  return {
    close() {
      closed = true;
      if (timer !== undefined) window.clearTimeout(timer);
      es?.close();
    },
  };
}
