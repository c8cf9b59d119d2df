/*
 * pgpool.h: a per-loop pool of PostgreSQL connections (db/pg.h).
 *
 * Connections are opened lazily: a caller waiting for a connection when none is idle opens one,
 * up to pool_size. Idle connections are kept until they break or the pool closes. A connection
 * that breaks is discarded (closed) and replaced on the next demand.
 *
 * Waiting is bounded twice: at most max_waiters callers wait (the next gets -EAGAIN at once, to
 * be answered 503), and each waits at most acquire_timeout_ms (-ETIMEDOUT).
 *
 * Outages: after a failed connect attempt the pool is "down" and retries with jittered backoff
 * (reconnect_min_ms doubling up to reconnect_max_ms). While down, every waiter is failed with
 * -ENOTCONN as soon as no attempt is in flight, and new callers get -ENOTCONN at once, so a caller
 * never hangs on a dead server. The first caller after the backoff delay triggers the next
 * attempt (and waits for it).
 *
 * Threading: a pool belongs to the loop it was created on; every function must be called on that
 * loop's thread and every callback runs there. Acquire callbacks never run from inside
 * ldg_pgpool_acquire / ldg_pgpool_query: they run from the pool's timer on a later loop turn.
 */
#ifndef LDG_DB_PGPOOL_H
#define LDG_DB_PGPOOL_H

#include "db/pg.h"

struct ldg_pgpool;

/* Acquire result: `conn` is lent to the callback's owner until ldg_pgpool_release (conn IDLE),
 * or NULL with err < 0: -ETIMEDOUT (acquire_timeout_ms passed), -ENOTCONN (server unreachable),
 * -ECANCELED (pool closing). */
typedef void (*ldg_pgpool_acquire_cb)(struct ldg_pg *conn, int err, void *ud);

typedef void (*ldg_pgpool_closed_cb)(void *ud);

/* Create an empty pool; never NULL. `cfg` is borrowed and must outlive the pool; `password`
 * (nullable) and `name` (log field `pg=<name>`) are copied. No connection is opened yet. */
struct ldg_pgpool *ldg_pgpool_new(uv_loop_t *loop, const struct ldg_pg_cfg *cfg, const char *password,
                                  const char *name);

/* Ask for a connection. Returns 0: cb runs exactly once, later. Or at once, without callback:
 * -EAGAIN (max_waiters callers already waiting), -ENOTCONN (server down, retry not due yet),
 * -ECANCELED (pool closing). */
int ldg_pgpool_acquire(struct ldg_pgpool *p, ldg_pgpool_acquire_cb cb, void *ud) LDG_MUSTCHECK;

/* Give a lent connection back. An IDLE one outside any transaction block is reused; any other
 * (inside BEGIN without COMMIT/ROLLBACK, BROKEN, or released in the
 * middle of an operation or COPY, whose callbacks then get -ECANCELED) is closed and replaced on
 * demand. Safe from any callback, also while the pool closes (until its on_closed). */
void ldg_pgpool_release(struct ldg_pgpool *p, struct ldg_pg *conn);

/* One-shot statement: acquire, run, release. sql/name/params are copied (the statement runs
 * later). cb runs exactly once, never from inside this call, as a statement callback of db/pg.h:
 * res NULL on failure (ldg_pg_failure() says why, including acquire failures: -ETIMEDOUT,
 * -ENOTCONN, -ECANCELED), otherwise PQclear'ed after cb returns unless cb calls ldg_pg_keep(res).
 * Returns 0 or, without callback, the codes of ldg_pgpool_acquire or -EINVAL. */
int ldg_pgpool_query(struct ldg_pgpool *p, const char *sql, int nparams, const char *const *params,
                     ldg_pg_cb cb, void *ud) LDG_MUSTCHECK;
/* Same with a prepared statement `name` (prepared once per connection). */
int ldg_pgpool_query_prepared(struct ldg_pgpool *p, const char *name, const char *sql, int nparams,
                              const char *const *params, ldg_pg_cb cb, void *ud) LDG_MUSTCHECK;

struct ldg_pgpool_stats {
    size_t connecting, idle, lent, closing; /* connections per pool state */
    size_t waiters;
    bool down; /* last connect attempt failed */
};
void ldg_pgpool_stats(const struct ldg_pgpool *p, struct ldg_pgpool_stats *out);

/* Failures since creation: failed connects, lost connections, operation deadlines (summed over
 * every connection the pool ever had) plus failed acquires (timeout, down, closing). Server
 * errors of single statements are not counted. */
uint64_t ldg_pgpool_errors(const struct ldg_pgpool *p);

/* Close: waiters get -ECANCELED (from inside this call), every connection is closed (lent ones
 * too: their pending callbacks get -ECANCELED), handles are closed and memory freed in close
 * callbacks, then on_closed(ud) (nullable). Call once; `p` must not be used after on_closed. */
void ldg_pgpool_close(struct ldg_pgpool *p, ldg_pgpool_closed_cb on_closed, void *ud);

#endif
