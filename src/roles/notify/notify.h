/*
 * notify.h: the notifications role: GET /api/v1/notifications/stream (Server-Sent Events,
 * reference §3.8 N3, decisions D7) and the publishing side used by the ingest role (§5.2).
 *
 * Publishing (any role, any process): for every notifiable log one Lua script call per request
 * does, per notification, XADD to the project's capped replay stream
 * `notifications:replay:<pid>` (MAXLEN ~ replay_events), PUBLISH "<stream id>\n<json>" on
 * `notifications:events:<pid>` and PUBLISH the bare JSON on `notifications:errors:<pid>` (§5.2,
 * unchanged for other subscribers). The stream id is the SSE event id.
 *
 * Fan-out (each worker loop): one Redis pub/sub connection; a project's events channel is
 * subscribed while the loop has a stream for it (reference-counted through the project's member
 * list); each message is serialised once into a shared chunk (http/chunk.h) written to every
 * matching stream of the loop. Preferences are per account and per loop, re-read from
 * PostgreSQL when `notifications:prefs` announces a change (ldg_notify_prefs_changed) or when
 * the pub/sub connection was lost (messages may have been missed).
 *
 * Bounds: streams per account (a Redis sorted set of leases, see docs/notifications.md), bytes
 * queued per stream (send_buffer_bytes, then disconnect), live events held while a resume
 * replays (then disconnect), replayed events per resume (replay_events).
 *
 * Threading: per-worker state on the worker's loop; the config is immutable.
 */
#ifndef LDG_ROLES_NOTIFY_H
#define LDG_ROLES_NOTIFY_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

struct ldg_worker;
struct ldg_config;

/* The [notifications] section. */
struct ldg_notify_cfg {
    bool enabled;                    /* off: the stream answers 503 and nothing is published */
    int64_t heartbeat_ms;            /* `heartbeat` event period per stream */
    int64_t ping_ms;                 /* `: ping` comment period per stream; 0 = none */
    int64_t max_streams_per_account; /* across every process sharing the Redis */
    int64_t stream_lease_ms;         /* a stream's slot expires unless renewed (crashed process) */
    int64_t send_buffer_bytes;       /* bytes queued per stream before it is disconnected */
    int64_t replay_events;           /* per project: kept for resume, and replayed at most */
    int64_t replay_window_ms;        /* a resume replays events at most this old */
    int64_t replay_pending_max;      /* live events held per stream while its resume replays */
    int64_t replay_max_bytes;        /* bytes of replayed events held per stream while resuming */
    int64_t shutdown_retry_ms;       /* `retry:` advised to clients in the final event */
    int64_t tail_max_logs_per_s;     /* live tail: logs sent per stream and second (token bucket) */
    int64_t tail_send_buffer_bytes;  /* live tail: queued bytes past which logs are dropped, not sent */
};

extern const struct ldg_cfg_key ldg_notify_cfg_keys[];
extern const struct ldg_role ldg_role_notify;

/* Worker thread: publish n notification JSON texts of project_id (notes[off[i]..off[i+1])) in one
 * Redis round trip on w->redis, fire-and-forget (a NOSCRIPT reply is retried once with EVAL).
 * Does nothing when [notifications] enabled = off. Every argument is copied before it returns. */
void ldg_notify_publish(struct ldg_worker *w, int64_t project_id, const char *notes, const size_t *off,
                        size_t n);

/* Worker thread: publish one typed event `name` ([a-z_], at most 32 characters, e.g.
 * "error_regression") with its JSON data, the same way: it gets an id, is kept in the replay
 * stream and is sent to the project's streams as `event: <name>` (not on the errors channel).
 * Preferences filter it by `enabled` and the project's switch only. */
void ldg_notify_publish_event(struct ldg_worker *w, int64_t project_id, const char *name, const char *json,
                              size_t len);

/* Worker thread: announce that account_id's preferences changed (PUBLISH on notifications:prefs),
 * so every loop with a stream of the account re-reads them. Fire-and-forget. */
void ldg_notify_prefs_changed(struct ldg_worker *w, int64_t account_id);

#endif
