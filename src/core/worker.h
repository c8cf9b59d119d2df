/*
 * worker.h: one thread = one uv_loop_t. A worker owns its listening socket (SO_REUSEPORT, so
 * the kernel spreads connections over workers), its connections, its sweeper timer, its Redis
 * and PostgreSQL clients, its stats and the per-worker state of every enabled role.
 *
 * Threading: every field is touched only by the worker's own thread, except
 *   - `stats` (single writer, relaxed atomics, read by any worker rendering /metrics),
 *   - the inbox (ldg_worker_post may be called from any thread).
 * Lifecycle: ldg_worker_start (main thread) -> loop runs -> ldg_worker_post(STOP) -> drain ->
 * every handle closed -> uv_loop_close() == 0 -> thread exits -> ldg_worker_join (main thread).
 */
#ifndef LDG_WORKER_H
#define LDG_WORKER_H

#include <uv.h>

#include "core/list.h"
#include "core/stats.h"
#include "db/shardmap.h"
#include "roles/role.h"

struct ldg_config;
struct ldg_router;
struct ldg_redis;
struct ldg_redis_sub;
struct ldg_pgpool;
struct ldg_pgroute;
struct ldg_server;

/* Connection states; each has a list on the worker, ordered by deadline (see conn.c). */
enum ldg_conn_state {
    LDG_CONN_READ_HEAD,
    LDG_CONN_READ_BODY,
    LDG_CONN_DISPATCHED,
    LDG_CONN_WRITING,
    LDG_CONN_WRITTEN, /* response written at once; finished by the worker's `written` check */
    LDG_CONN_IDLE,
    LDG_CONN_CLOSING,
    LDG_CONN_STREAM, /* long-lived streamed response (http/conn.h); no deadline */
    LDG_CONN_NSTATES,
};

enum ldg_worker_state { LDG_WORKER_RUNNING, LDG_WORKER_DRAINING, LDG_WORKER_CLOSING };

/* A cross-thread message. The sender allocates it; the worker frees it after `fn` returns. */
struct ldg_worker_msg {
    struct ldg_list_node link;
    void (*fn)(struct ldg_worker *w, void *arg); /* runs on the worker's thread */
    void *arg;
};

#define LDG_WORKER_READ_BUF (64 * 1024)

struct ldg_worker {
    unsigned id;
    uv_loop_t loop;
    uv_thread_t thread;
    struct ldg_server *srv;          /* borrowed: process-wide, immutable after start */
    const struct ldg_config *cfg;    /* borrowed */
    const struct ldg_router *router; /* borrowed */
    enum ldg_worker_state state;

    uv_tcp_t listener;
    bool listening;
    uv_async_t inbox;
    uv_mutex_t inbox_lock;
    struct ldg_list inbox_q; /* of ldg_worker_msg; guarded by inbox_lock */
    uv_timer_t sweeper;
    uv_check_t written; /* active while conns[LDG_CONN_WRITTEN] is not empty */

    struct ldg_list conns[LDG_CONN_NSTATES];
    size_t nconns;
    uint64_t next_conn_id;
    struct ldg_list req_pool; /* reusable requests (bounded) */
    uint64_t drain_deadline_ms;
    size_t body_bytes; /* request body bytes buffered (reserved) now: bounded by max_buffered_body_bytes */

    /* Shared read buffer: alloc_cb hands it out, on_read parses it before returning, so idle
     * connections hold no buffer of their own (nginx, h2o). */
    char *read_buf; /* owned, LDG_WORKER_READ_BUF bytes */
    bool read_buf_busy;

    char date[40]; /* "Date: ... GMT" value, refreshed once per second */
    uint64_t date_sec;
    uint64_t rid_counter;

    struct ldg_redis *redis; /* borrowed alias of redis_shard[0]: global keys (sessions, caches, locks) */
    /* owned: one command connection per Redis shard ([redis], [redis.1], ...); a project's keys,
     * queue entries and channels are on redis_shard[ldg_settings_redis_shard(cfg, project)] */
    struct ldg_redis *redis_shard[LDG_SHARDS_MAX];
    unsigned nredis;
    struct ldg_pgpool *pg_auth;   /* owned */
    struct ldg_pgpool *pg_logs;   /* owned: logs shard 0 */
    struct ldg_pgroute *pg_route; /* owned: logs shards 1.. and replicas (db/pgroute.h) */
    unsigned clients_closing;     /* close callbacks still due from the clients above */
    bool roles_freed;             /* shutdown: the roles' free hooks ran (after the clients closed) */
    uint64_t close_warned_ms;

    struct ldg_stats stats;
    void *role_state[LDG_ROLE_MAX]; /* owned by each role */
    bool role_started[LDG_ROLE_MAX];
    int exit_status; /* 0, or non-zero when the loop could not be closed cleanly */
};

/* Main thread: create and start the worker thread; returns 0 or a negative code (e.g. the
 * listener could not bind). */
int ldg_worker_start(struct ldg_worker *w, struct ldg_server *srv, unsigned id) LDG_MUSTCHECK;
/* Main thread: wait for the thread to end, release its memory. */
void ldg_worker_join(struct ldg_worker *w);

/* Any thread: queue fn(w, arg) to run on the worker's loop. Never blocks on the worker. */
void ldg_worker_post(struct ldg_worker *w, void (*fn)(struct ldg_worker *w, void *arg), void *arg);

/* Worker thread: begin draining (stop accepting, finish in-flight work within drain_timeout_ms). */
void ldg_worker_begin_drain(struct ldg_worker *w);

/* Worker thread: the command connection of the project's Redis shard (w->redis with one shard). */
struct ldg_redis *ldg_worker_redis_for(const struct ldg_worker *w, int64_t project_id);

/* Worker thread: milliseconds of the loop's cached clock. */
static inline uint64_t ldg_worker_now(const struct ldg_worker *w)
{
    return uv_now(&w->loop);
}

/* Worker thread: a fresh request id (16 hex chars) into out (>= 17 bytes). */
void ldg_worker_request_id(struct ldg_worker *w, char *out);

/* Worker thread: the cached HTTP date string. */
const char *ldg_worker_date(struct ldg_worker *w);

#endif
