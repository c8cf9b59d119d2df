/*
 * dispatch.h: delivering one event (an alert firing or resolving, a monitor going up or down, a
 * connector test) to the connectors of an account (docs/alerts.md "Connectors").
 *
 *   in_app   one row in the account's notification inbox, and a live `notification` event on the
 *            project's notification stream (when the event has a project);
 *   webhook  POST of a JSON document to the connector's URL, signed with HMAC-SHA256 of
 *            "<timestamp>.<body>" under the connector's secret (X-Ledger-Signature: sha256=<hex>,
 *            X-Ledger-Timestamp); retried on network errors, 429 and 5xx with a doubling backoff
 *            ([analytics] webhook_*); every attempt is logged in connector_deliveries;
 *   email    a plain-text mail through the SMTP relay of [analytics] smtp_host; without one the
 *            delivery is logged as skipped.
 *
 * The connectors are read from the auth database (id among `ids`, owned by the account).
 * Outgoing requests go through one bounded HTTP client per worker (http/client.h).
 *
 * Threading: a worker's loop thread; each worker has its own dispatcher (created on first use).
 * A role that dispatches calls ldg_dispatch_stop in stop_worker and waits for ldg_dispatch_idle.
 */
#ifndef LDG_ALERTS_DISPATCH_H
#define LDG_ALERTS_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

struct ldg_worker;

struct ldg_dispatch_event {
    int64_t account_id; /* owner of the connectors and of inbox rows */
    int64_t project_id; /* 0: none */
    const char *kind;   /* alert_firing, alert_resolved, monitor_down, monitor_up, test */
    const char *title;
    const char *data_json; /* a JSON object; NULL = {} */
};

struct ldg_dispatch_result {
    int connectors; /* found and attempted */
    int delivered, failed, skipped;
    int last_status; /* webhook: last HTTP status (0 = none) */
    char last_error[128];
};

typedef void (*ldg_dispatch_done_cb)(const struct ldg_dispatch_result *r, void *ud);

/* Deliver ev (copied) to the connectors whose ids are in `ids` (PostgreSQL array text, e.g.
 * "{1,2}") and that belong to ev->account_id; only enabled ones unless `test`. A test makes one
 * attempt per connector. done (nullable) runs once, later, when every delivery ended. */
void ldg_dispatch_send(struct ldg_worker *w, const struct ldg_dispatch_event *ev, const char *ids, bool test,
                       ldg_dispatch_done_cb done, void *ud);

/* Put one notification into the inbox of the account owning project_id, without connectors and
 * without a live event (for events already published on the stream, e.g. error_regression).
 * Fire and forget; failures are logged. Any role's worker thread. */
void ldg_dispatch_inbox_owner(struct ldg_worker *w, int64_t project_id, const char *kind, const char *title,
                              const char *data_json);

/* The worker's outgoing HTTP client (created on first use), shared with the monitor checker. */
struct ldg_httpc *ldg_dispatch_http(struct ldg_worker *w);

/* Begin shutdown of this worker's dispatcher: pending retries are dropped, requests cancelled. */
void ldg_dispatch_stop(struct ldg_worker *w);

/* No delivery in flight on this worker (true when it never dispatched). */
bool ldg_dispatch_idle(const struct ldg_worker *w);

#endif
