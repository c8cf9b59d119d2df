/*
 * pg.h: one non-blocking libpq connection driven by a uv_poll_t.
 *
 * The connection connects by itself (PQconnectStartParams + PQconnectPoll) as soon as it is
 * created and never reconnects: once BROKEN it stays BROKEN and its owner (normally the pool,
 * db/pgpool.h) closes it and makes a new one.
 *
 * One operation runs at a time: a query, a pipeline of statements, or a COPY FROM STDIN.
 * Every operation has a client-side deadline of statement_timeout_ms + LDG_PG_DEADLINE_MARGIN_MS
 * (the server enforces statement_timeout_ms itself; the margin only catches a dead server or
 * network). A missed deadline drops the connection: the caller gets -ETIMEDOUT and the state
 * becomes BROKEN.
 *
 * States (enum ldg_pg_state), changed only by one set_state() in pg.c:
 *   CONNECTING -> IDLE | BROKEN
 *   IDLE       -> BUSY | BROKEN
 *   BUSY       -> IDLE | COPY_IN | BROKEN
 *   COPY_IN    -> BUSY | BROKEN
 *
 * Threading: a connection belongs to the loop it was created on; every function must be called
 * on that loop's thread and every callback runs there. Nothing blocks (host names other than an
 * IP address, "localhost" or a unix-socket directory are resolved synchronously by libpq).
 */
#ifndef LDG_DB_PG_H
#define LDG_DB_PG_H

#include <libpq-fe.h>
#include <uv.h>

#include "core/common.h"
#include "core/config.h"

/* A [pg_auth] or [pg_logs] section. Filled from the key tables below; immutable after startup
 * and shared read-only by every worker. Strings are owned by the config. */
struct ldg_pg_cfg {
    char *host; /* IP, name, or unix-socket directory (libpq "host") */
    int64_t port;
    char *dbname;
    char *user;
    char *password_file;          /* read by the core; "" means no password */
    int64_t pool_size;            /* connections per worker pool */
    int64_t connect_timeout_ms;   /* TCP/unix connect + startup + authentication */
    int64_t statement_timeout_ms; /* server-side statement_timeout; client deadline = this + margin */
    int64_t acquire_timeout_ms;   /* longest wait for a pooled connection */
    int64_t max_waiters;          /* bound on callers waiting for a connection (beyond: -EAGAIN) */
    int64_t reconnect_min_ms;     /* first delay after a failed connect (jittered, doubling) */
    int64_t reconnect_max_ms;     /* cap of that delay */
};

/* A [pg_logs_replica.N] section: a streaming replica of logs shard `shard`, read by the query and
 * analytics roles while its lag is at most max_lag_ms (db/pgroute.h). */
struct ldg_pg_replica_cfg {
    struct ldg_pg_cfg pg; /* first: the connection keys are those of [pg_logs] */
    int64_t shard;
    int64_t max_lag_ms;
    int64_t probe_interval_ms;
};

/* Key tables ({0}-terminated) of the [pg_auth] section (default dbname ledger_auth), the
 * [pg_logs] and [pg_logs.N] sections (default dbname ledger_logs) and [pg_logs_replica.N]. */
extern const struct ldg_cfg_key ldg_pg_auth_cfg_keys[];
extern const struct ldg_cfg_key ldg_pg_logs_cfg_keys[];
extern const struct ldg_cfg_key ldg_pg_replica_cfg_keys[];

/* Added to statement_timeout_ms for the client-side deadline of every operation. */
#define LDG_PG_DEADLINE_MARGIN_MS 2000

/* Longest pipeline accepted by ldg_pg_pipeline (a bound on per-operation memory). */
#define LDG_PG_MAX_PIPELINE 1024

enum ldg_pg_state {
    LDG_PG_CONNECTING,
    LDG_PG_IDLE,
    LDG_PG_BUSY,
    LDG_PG_COPY_IN,
    LDG_PG_BROKEN,
};
#define LDG_PG_NSTATES 5

struct ldg_pg;

/* Why a statement callback got res == NULL (see ldg_pg_failure). Error codes:
 *   -EIO         the server rejected the statement: sqlstate is set (e.g. "23505" for a unique
 *                violation, "57014" for statement_timeout)
 *   -ECANCELED   not run: an earlier statement of the same pipeline failed, or the connection
 *                (or its pool) was closed
 *   -ETIMEDOUT   client-side deadline passed (the connection was dropped), or (pool) no
 *                connection became free within acquire_timeout_ms
 *   -ECONNRESET  the connection was lost or could not be used
 *   -ENOTCONN    (pool) the server is unreachable
 *   -EINVAL      the statement is not what the call expects (e.g. not COPY ... FROM STDIN)
 * message is for logs only, never for clients. */
struct ldg_pg_error {
    int code;
    char sqlstate[6];    /* 5 chars + NUL for -EIO, "" otherwise */
    const char *message; /* borrowed for the callback */
    /* -EIO: the constraint the server named (PG_DIAG_CONSTRAINT_NAME), "" if none (e.g. 23514 "no
     * partition of relation ... found for row" names none, a CHECK violation does). Borrowed. */
    const char *constraint;
};

/* Statement callback. res is NULL on any failure (details: ldg_pg_failure()). Otherwise res
 * (PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_COPY_IN, ...) is owned by the library and PQclear'ed
 * when the callback returns, unless the callback calls ldg_pg_keep(res) (it then owns it).
 * The callback may start the next operation on the connection if this was the last statement of
 * its operation (the connection is IDLE again by then) and may call ldg_pg_close. */
typedef void (*ldg_pg_cb)(PGresult *res, void *ud);

/* Inside a statement callback that got res == NULL: why. Valid until that callback returns
 * (nested callbacks have their own). Outside a callback: a zeroed error. Loop thread only. */
const struct ldg_pg_error *ldg_pg_failure(void);

/* Inside a statement callback: take ownership of its res (the caller must PQclear it). */
void ldg_pg_keep(PGresult *res);

/* Internal to db/ (used by the pool): call a statement callback with the failure context set up,
 * then PQclear res unless kept. */
void ldg__pg_deliver(ldg_pg_cb cb, void *ud, PGresult *res, int code, const char *sqlstate,
                     const char *message);

/* State-change hook for the owner (the pool). Called after the change, on transitions into
 * IDLE (from CONNECTING or BUSY) and into BROKEN, never for a connection being closed.
 * It may call ldg_pg_close(c) and, on CONNECTING -> IDLE, start an operation. */
typedef void (*ldg_pg_state_cb)(struct ldg_pg *c, enum ldg_pg_state from, enum ldg_pg_state to, void *ud);

/* COPY buffer consumed (status 0: handed to the kernel; the caller may reuse the buffer), or failed
 * (negative code as above; the connection is BROKEN or closing). */
typedef void (*ldg_pg_copy_cb)(struct ldg_pg *c, int status, void *ud);

typedef void (*ldg_pg_closed_cb)(void *ud);

/* One statement of a pipeline. All pointers are borrowed for the duration of the call only
 * (libpq copies them into its output buffer). Parameters are text; NULL entries are SQL NULL. */
struct ldg_pg_stmt {
    const char *sql;  /* one statement, $1.. placeholders */
    const char *name; /* non-NULL: prepared statement name; prepared once per connection
                       * (PQsendPrepare on first use), executed with PQsendQueryPrepared.
                       * A name must always be used with the same sql. */
    int nparams;
    const char *const *params;
    ldg_pg_cb cb; /* required */
    void *ud;
};

/* Create a connection and start connecting; returns at once, never NULL (OOM aborts). The result
 * (IDLE or BROKEN) is reported through on_state (nullable), never from inside this call.
 * `cfg` is borrowed and must outlive the connection; `password` (nullable) and `logctx` (logfmt
 * fields such as "pg=auth conn=3") are copied. `ud` is passed to on_state and returned by
 * ldg_pg_data. */
struct ldg_pg *ldg_pg_new(uv_loop_t *loop, const struct ldg_pg_cfg *cfg, const char *password,
                          const char *logctx, ldg_pg_state_cb on_state, void *ud);

enum ldg_pg_state ldg_pg_state(const struct ldg_pg *c);
void *ldg_pg_data(const struct ldg_pg *c);

/* Run one statement. Returns 0: `cb` is then called exactly once (never from inside this call).
 * Otherwise, with no callback: -EBUSY (an operation is running), -ENOTCONN (CONNECTING or
 * closing), -ECONNRESET (BROKEN, or the send failed: the connection is now BROKEN), -EINVAL. */
int ldg_pg_query(struct ldg_pg *c, const char *sql, int nparams, const char *const *params, ldg_pg_cb cb,
                 void *ud) LDG_MUSTCHECK;

/* Same as a prepared statement `name` (see struct ldg_pg_stmt). */
int ldg_pg_query_prepared(struct ldg_pg *c, const char *name, const char *sql, int nparams,
                          const char *const *params, ldg_pg_cb cb, void *ud) LDG_MUSTCHECK;

/* Pipeline mode: send n (1..LDG_PG_MAX_PIPELINE) statements at once followed by one Sync; each
 * statement's callback is called in order once the whole pipeline has completed. The statements
 * run as one implicit transaction (unless they contain BEGIN/COMMIT): after a failing statement
 * the rest get -ECANCELED. Same return codes as ldg_pg_query. */
int ldg_pg_pipeline(struct ldg_pg *c, const struct ldg_pg_stmt *stmts, size_t n) LDG_MUSTCHECK;

/* COPY ... FROM STDIN, bounded memory:
 *   1. ldg_pg_copy_start(c, "COPY t (a, b) FROM STDIN", cb): cb gets PGRES_COPY_IN (err 0; the
 *      state is COPY_IN) or the server's error (state IDLE again).
 *   2. ldg_pg_copy_put(c, buf, len, cb): hands over one buffer (borrowed until cb). At most one
 *      buffer is outstanding; cb runs once it has been written to the socket, so the caller's
 *      memory plus one buffer in libpq is all that a COPY ever holds.
 *   3. ldg_pg_copy_end(c, NULL, cb): finishes the COPY (errmsg non-NULL aborts it instead);
 *      cb gets the final result (PGRES_COMMAND_OK, PQcmdTuples = rows) or the error (bad rows
 *      are reported here).
 * The whole COPY, start to end, must finish within the operation deadline. Return codes as
 * ldg_pg_query, plus -EBUSY from put/end while a put is outstanding and -EINVAL in the wrong
 * state. A connection lost between calls is reported by the next call (-ECONNRESET). */
int ldg_pg_copy_start(struct ldg_pg *c, const char *sql, ldg_pg_cb cb, void *ud) LDG_MUSTCHECK;
int ldg_pg_copy_put(struct ldg_pg *c, const void *data, size_t len, ldg_pg_copy_cb cb,
                    void *ud) LDG_MUSTCHECK;
int ldg_pg_copy_end(struct ldg_pg *c, const char *errmsg, ldg_pg_cb cb, void *ud) LDG_MUSTCHECK;

/* IDLE but inside a transaction block (open or aborted): a connection in this state must not be
 * reused by another caller. */
bool ldg_pg_in_transaction(const struct ldg_pg *c);

/* Connection-level failures since creation: failed connects, lost connections, deadlines.
 * Server errors of single statements (sqlstate) are not counted. */
uint64_t ldg_pg_errors(const struct ldg_pg *c);

/* The last connection-level error text (for logs), "" if none. Borrowed until the next call. */
const char *ldg_pg_last_error(const struct ldg_pg *c);

/* What a failed connection attempt's libpq message means, in words an operator acts on:
 * "authentication failed" (wrong password, unknown role, no pg_hba.conf entry), "database missing",
 * "server refused the connection" (too many clients, starting up, shutting down) or "server
 * unreachable" (refused, timed out, unknown host). Static text. Pure; any thread. */
const char *ldg_pg_connect_cause(const char *libpq_message);

/* Close: pending statement, put and end callbacks get -ECANCELED (from inside this call), the
 * poll handle is stopped before PQfinish closes the socket, every handle is closed and the memory
 * freed in the close callbacks, then on_closed(ud) (nullable) runs. A statement still running goes
 * on in the server (and the statements already in its input buffer after it) unless cancelled
 * first with ldg_pg_cancel. `c` must not be used after
 * on_closed; on_state is not called any more. Call once; safe from any callback of `c`. */
void ldg_pg_close(struct ldg_pg *c, ldg_pg_closed_cb on_closed, void *ud);

/* Ask the server to cancel the statement running on c (BUSY or COPY_IN; otherwise nothing), fire
 * and forget: PQcancel blocks (it opens its own connection; libpq 15 has no non-blocking form), so
 * it runs on the loop's thread pool with a PGcancel independent of c, which may be closed at once.
 * For a transaction given up on, so that it rolls back rather than commits later (the statements
 * sent after the running one, COMMIT included, are already in the server's buffer). A connection
 * dropped at its client-side deadline (-ETIMEDOUT) is cancelled this way too. */
void ldg_pg_cancel(struct ldg_pg *c);

#endif
