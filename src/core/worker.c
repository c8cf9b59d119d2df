/*
 * worker.c: the per-thread loop: listener, inbox, sweeper, and the ordered shutdown
 *   drain (stop accepting, roles' stop hooks, in-flight requests finish or hit the deadline)
 *   -> Redis/PostgreSQL clients closed (their pending callbacks fail, into live role state)
 *   -> roles drained (e.g. password hashes still on the thread pool have called back)
 *   -> roles' free hooks -> sweeper and inbox closed -> the loop runs out of handles
 *   -> uv_loop_close() == 0.
 * Role state is freed last so that no late callback (a failed query, a hash job, a Redis reply)
 * can reach freed memory.
 */
#include "core/worker.h"

#include <sys/socket.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/router.h"
#include "server.h"

static void final_close(struct ldg_worker *w);

const char *ldg_worker_date(struct ldg_worker *w)
{
    time_t now = time(NULL);
    if ((uint64_t)now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_sec = (uint64_t)now;
    }
    return w->date;
}

void ldg_worker_request_id(struct ldg_worker *w, char *out)
{
    /* %08x%02x%06x of seed, worker, counter, without printf (one per request) */
    static const char hex[] = "0123456789abcdef";
    uint64_t v =
        (uint64_t)w->srv->rid_seed << 32 | (uint64_t)(w->id & 0xff) << 24 | (++w->rid_counter & 0xffffff);
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 0xf];
    out[16] = '\0';
}

void ldg_worker_post(struct ldg_worker *w, void (*fn)(struct ldg_worker *w, void *arg), void *arg)
{
    struct ldg_worker_msg *m = ldg_malloc(sizeof *m);
    m->fn = fn;
    m->arg = arg;
    ldg_list_node_init(&m->link);
    uv_mutex_lock(&w->inbox_lock);
    ldg_list_push_back(&w->inbox_q, &m->link);
    uv_mutex_unlock(&w->inbox_lock);
    uv_async_send(&w->inbox);
}

static void on_inbox(uv_async_t *a)
{
    struct ldg_worker *w = a->data;
    struct ldg_list q;
    ldg_list_init(&q);
    uv_mutex_lock(&w->inbox_lock);
    ldg_list_splice(&q, &w->inbox_q);
    uv_mutex_unlock(&w->inbox_lock);
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&q))) {
        struct ldg_worker_msg *m = ldg_container_of(n, struct ldg_worker_msg, link);
        m->fn(w, m->arg);
        free(m);
    }
}

static bool roles_drained(struct ldg_worker *w)
{
    for (size_t i = 0; i < ldg_roles_count; i++) {
        const struct ldg_role *r = ldg_roles[i];
        if (w->role_started[i] && r->drained && !r->drained(w, w->role_state[i]))
            return false;
    }
    return true;
}

static void mirror_client_errors(struct ldg_worker *w)
{
    uint64_t pg = 0;
    if (w->pg_auth)
        pg += ldg_pgpool_errors(w->pg_auth);
    if (w->pg_logs)
        pg += ldg_pgpool_errors(w->pg_logs);
    pg += ldg_pgroute_errors(w);
    ldg_stat_set(&w->stats.pg_errors, pg);
    uint64_t re = 0;
    for (unsigned i = 0; i < w->nredis; i++)
        if (w->redis_shard[i]) {
            uint64_t e = ldg_redis_errors(w->redis_shard[i]);
            ldg_stat_set(&w->stats.redis_shard_errors[i], e);
            re += e;
        }
    ldg_stat_set(&w->stats.redis_errors, re);
}

struct ldg_redis *ldg_worker_redis_for(const struct ldg_worker *w, int64_t project_id)
{
    if (w->nredis <= 1)
        return w->redis;
    return w->redis_shard[ldg_settings_redis_shard(w->cfg, project_id)];
}

static void finish_close(struct ldg_worker *w);

static void on_sweep(uv_timer_t *t)
{
    struct ldg_worker *w = t->data;
    uint64_t now = ldg_worker_now(w);
    if (w->state == LDG_WORKER_CLOSING) {
        finish_close(w); /* waiting for the clients' closes and the roles' late callbacks */
        return;
    }
    ldg_conn_sweep(w, now);
    mirror_client_errors(w);
    if (w->state != LDG_WORKER_DRAINING)
        return;
    if (now >= w->drain_deadline_ms && w->nconns) {
        ldg_log_warn(NULL, "drain deadline passed; closing %zu connections", w->nconns);
        ldg_conn_close_all(w);
    }
    if (w->nconns == 0 && (roles_drained(w) || now >= w->drain_deadline_ms + 1000))
        final_close(w);
}

static void on_listener_closed(uv_handle_t *h)
{
}

void ldg_worker_begin_drain(struct ldg_worker *w)
{
    if (w->state != LDG_WORKER_RUNNING)
        return;
    w->state = LDG_WORKER_DRAINING;
    w->drain_deadline_ms = ldg_worker_now(w) + (uint64_t)w->cfg->server.drain_timeout_ms;
    ldg_log_info(NULL, "draining: %zu connections open", w->nconns);
    if (w->listening) {
        w->listening = false;
        uv_close((uv_handle_t *)&w->listener, on_listener_closed);
    }
    ldg_conn_drain(w);
    for (size_t i = ldg_roles_count; i-- > 0;)
        if (w->role_started[i] && ldg_roles[i]->stop_worker)
            ldg_roles[i]->stop_worker(w, w->role_state[i]);
}

static void on_handle_closed(uv_handle_t *h)
{
}

static void close_loop_handles(struct ldg_worker *w)
{
    uv_close((uv_handle_t *)&w->sweeper, on_handle_closed);
    uv_close((uv_handle_t *)&w->written, on_handle_closed);
    uv_close((uv_handle_t *)&w->inbox, on_handle_closed);
}

/* The clients are closed; free the roles once nothing of theirs can still call back (a role's
 * `drained` hook says so: hash jobs on the thread pool cannot be cancelled once running), then
 * close the loop's own handles. Polled by the sweeper until then. */
static void finish_close(struct ldg_worker *w)
{
    if (w->clients_closing || w->roles_freed)
        return;
    if (!roles_drained(w)) {
        uint64_t now = ldg_worker_now(w);
        if (!w->close_warned_ms)
            w->close_warned_ms = now;
        else if (now - w->close_warned_ms >= 5000) {
            ldg_log_warn(NULL, "shutdown: waiting for roles' pending work to call back");
            w->close_warned_ms = now;
        }
        return;
    }
    w->roles_freed = true;
    for (size_t i = ldg_roles_count; i-- > 0;) {
        if (w->role_started[i] && ldg_roles[i]->free_worker)
            ldg_roles[i]->free_worker(w, w->role_state[i]);
        w->role_started[i] = false;
    }
    uv_timer_stop(&w->sweeper);
    close_loop_handles(w);
}

static void on_client_closed(void *ud)
{
    struct ldg_worker *w = ud;
    LDG_ASSERT(w->clients_closing > 0);
    if (--w->clients_closing == 0)
        finish_close(w);
}

static void final_close(struct ldg_worker *w)
{
    if (w->state == LDG_WORKER_CLOSING)
        return;
    w->state = LDG_WORKER_CLOSING;
    /* Clients first: closing them fails their pending callbacks, which still find the roles'
     * state alive. The roles are freed by finish_close. Hold one count while starting the
     * closes so a synchronous completion cannot fire early. */
    w->clients_closing = 1;
    w->redis = NULL;
    for (unsigned i = 0; i < w->nredis; i++)
        if (w->redis_shard[i]) {
            w->clients_closing++;
            ldg_redis_close(w->redis_shard[i], on_client_closed, w);
            w->redis_shard[i] = NULL;
        }
    if (w->pg_auth) {
        w->clients_closing++;
        ldg_pgpool_close(w->pg_auth, on_client_closed, w);
        w->pg_auth = NULL;
    }
    if (w->pg_route) {
        w->clients_closing++;
        struct ldg_pgroute *r = w->pg_route;
        w->pg_route = NULL;
        ldg_pgroute_close(r, on_client_closed, w);
    }
    if (w->pg_logs) {
        w->clients_closing++;
        ldg_pgpool_close(w->pg_logs, on_client_closed, w);
        w->pg_logs = NULL;
    }
    on_client_closed(w);
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return AF_INET;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return AF_INET6;
    return -EINVAL;
}

/* SO_REUSEPORT must be set before bind; libuv 1.44 has no flag for it, so create the socket
 * with uv_tcp_init_ex (it exists right away), set the option on its fd, then bind. */
static int open_listener(struct ldg_worker *w)
{
    const struct ldg_server_cfg *s = &w->cfg->server;
    struct sockaddr_storage ss;
    int af = parse_addr(s->host, (int)s->port, &ss);
    if (af < 0)
        return af;
    int rc = uv_tcp_init_ex(&w->loop, &w->listener, (unsigned)af);
    if (rc < 0)
        return rc;
    w->listener.data = w;
    w->listening = true;
    uv_os_fd_t fd;
    int one = 1;
    if ((rc = uv_fileno((uv_handle_t *)&w->listener, &fd)) < 0)
        return rc;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return -errno;
    if ((rc = uv_tcp_bind(&w->listener, (const struct sockaddr *)&ss, 0)) < 0)
        return rc;
    return uv_listen((uv_stream_t *)&w->listener, (int)s->backlog, ldg_conn_on_connection);
}

static void start_clients(struct ldg_worker *w)
{
    const struct ldg_config *c = w->cfg;
    char name[32];
    w->nredis = c->nredis;
    for (unsigned i = 0; i < c->nredis; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "redis");
        else
            snprintf(name, sizeof name, "redis.%u", i);
        w->redis_shard[i] =
            ldg_redis_new(&w->loop, ldg_settings_redis_cfg(c, i), ldg_settings_redis_password(c, i), name);
    }
    w->redis = w->redis_shard[0];
    w->pg_auth = ldg_pgpool_new(&w->loop, &c->pg_auth, c->pg_auth_password, "pg_auth");
    w->pg_logs = ldg_pgpool_new(&w->loop, &c->pg_logs, c->pg_logs_password, "pg_logs");
    /* replicas serve the readers of logs: measured only where those run */
    int q = ldg_role_index("query"), a = ldg_role_index("analytics");
    bool readers = (q >= 0 && c->roles.enabled[q]) || (a >= 0 && c->roles.enabled[a]);
    w->pg_route = ldg_pgroute_new(w, readers);
}

static void worker_main(void *arg)
{
    struct ldg_worker *w = arg;
    ldg_log_set_worker((int)w->id);
    start_clients(w);
    int failed = 0;
    for (size_t i = 0; i < ldg_roles_count && !failed; i++) {
        const struct ldg_role *r = ldg_roles[i];
        if (!w->cfg->roles.enabled[i])
            continue;
        if (r->init_worker) {
            int rc = r->init_worker(w, w->cfg->role_cfg[i], &w->role_state[i]);
            if (rc < 0) {
                ldg_log_error(NULL, "role %s failed to start: %s", r->name, strerror(-rc));
                failed = rc;
                break;
            }
        }
        w->role_started[i] = true;
    }
    if (failed) {
        w->exit_status = 1;
        ldg_worker_begin_drain(w);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0) {
        ldg_log_error(NULL, "loop closed with handles still open: %s", uv_strerror(rc));
        w->exit_status = 1;
    }
    ldg_log_info(NULL, "worker stopped");
    atomic_fetch_add(&w->srv->exited, 1);
    uv_async_send(&w->srv->on_worker_exit);
}

int ldg_worker_start(struct ldg_worker *w, struct ldg_server *srv, unsigned id)
{
    w->id = id;
    w->srv = srv;
    w->cfg = srv->cfg;
    w->router = srv->router;
    w->state = LDG_WORKER_RUNNING;
    for (int i = 0; i < LDG_CONN_NSTATES; i++)
        ldg_list_init(&w->conns[i]);
    ldg_list_init(&w->inbox_q);
    ldg_list_init(&w->req_pool);
    w->read_buf = ldg_malloc(LDG_WORKER_READ_BUF);
    ldg_stats_init(&w->stats, ldg_router_count(srv->router));
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    uv_mutex_init(&w->inbox_lock);
    uv_async_init(&w->loop, &w->inbox, on_inbox);
    w->inbox.data = w;
    uv_timer_init(&w->loop, &w->sweeper);
    w->sweeper.data = w;
    uint64_t iv = (uint64_t)w->cfg->server.sweep_interval_ms;
    uv_timer_start(&w->sweeper, on_sweep, iv, iv);
    uv_check_init(&w->loop, &w->written);
    w->written.data = w;
    rc = open_listener(w);
    if (rc < 0) {
        ldg_log_error(NULL, "cannot listen on %s:%lld: %s", w->cfg->server.host,
                      (long long)w->cfg->server.port, uv_strerror(rc));
        if (w->listening)
            uv_close((uv_handle_t *)&w->listener, NULL);
        close_loop_handles(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&w->loop);
        uv_mutex_destroy(&w->inbox_lock);
        free(w->read_buf);
        ldg_stats_free(&w->stats);
        return rc;
    }
    w->listener.data = w;
    rc = uv_thread_create(&w->thread, worker_main, w);
    if (rc < 0)
        ldg_panic("cannot create worker thread: %s", uv_strerror(rc));
    return 0;
}

void ldg_worker_join(struct ldg_worker *w)
{
    uv_thread_join(&w->thread);
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&w->req_pool)))
        ldg__req_release_final(ldg_container_of(n, struct ldg_req, link));
    while ((n = ldg_list_pop_front(&w->inbox_q)))
        free(ldg_container_of(n, struct ldg_worker_msg, link));
    uv_mutex_destroy(&w->inbox_lock);
    free(w->read_buf);
    ldg_stats_free(&w->stats);
}
