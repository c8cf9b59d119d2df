/*
 * server.c: process lifecycle on the main thread.
 *
 * Start: router (admin routes, then each enabled role's routes) -> init_global hooks in start
 * order -> workers (each binds its own SO_REUSEPORT listener) -> main loop.
 * Stop (SIGTERM/SIGINT, or a worker that failed): every worker is told to drain; each closes its
 * handles and its loop; the main loop waits for all of them, joins the threads, then runs
 * free_global hooks in reverse order.
 */
#include "server.h"

#include <openssl/rand.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "http/admin.h"
#include "http/router.h"

static int run(const struct ldg_config *cfg);

int ldg_server_build_router(const struct ldg_config *cfg, struct ldg_router **out)
{
    struct ldg_router *r = ldg_router_new();
    int rc = ldg_admin_routes(r, cfg->server.debug_endpoints);
    for (size_t i = 0; rc == 0 && i < ldg_roles_count; i++)
        if (cfg->roles.enabled[i] && ldg_roles[i]->routes)
            ldg_roles[i]->routes(r, cfg->role_cfg[i]);
    if (rc < 0) {
        ldg_router_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static void on_drain_msg(struct ldg_worker *w, void *arg)
{
    ldg_worker_begin_drain(w);
}

static void shutdown_all(struct ldg_server *srv, const char *why)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    ldg_log_info(NULL, "shutting down: %s", why);
    for (unsigned i = 0; i < srv->nworkers; i++)
        ldg_worker_post(&srv->workers[i], on_drain_msg, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct ldg_server *srv = s->data;
    if (srv->shutting_down) {
        ldg_log_warn(NULL, "second signal: exiting without waiting for the drain");
        _exit(1);
    }
    shutdown_all(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_worker_exit(uv_async_t *a)
{
    struct ldg_server *srv = a->data;
    unsigned done = atomic_load(&srv->exited);
    if (!srv->shutting_down) {
        srv->exit_code = 1;
        shutdown_all(srv, "a worker stopped unexpectedly");
    }
    if (done == srv->nworkers) {
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        uv_close((uv_handle_t *)&srv->on_worker_exit, NULL);
    }
}

static int init_globals(const struct ldg_config *cfg, size_t *started)
{
    for (*started = 0; *started < ldg_roles_count; (*started)++) {
        size_t i = *started;
        if (!cfg->roles.enabled[i] || !ldg_roles[i]->init_global)
            continue;
        int rc = ldg_roles[i]->init_global(cfg, cfg->role_cfg[i]);
        if (rc < 0) {
            ldg_log_error(NULL, "role %s failed to initialise: %s", ldg_roles[i]->name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void free_globals(const struct ldg_config *cfg, size_t upto)
{
    for (size_t i = upto; i-- > 0;)
        if (cfg->roles.enabled[i] && ldg_roles[i]->free_global)
            ldg_roles[i]->free_global();
}

/*
 * The address lock. Workers listen with SO_REUSEPORT, so a second ledgerd on the same address
 * would bind without error and the kernel would split connections between the two processes.
 * Each process therefore first binds an abstract unix socket named after its listen address
 * ("ledgerd:<host>:<port>"): the kernel refuses a second bind of the name while the first process
 * lives, and frees it when that process exits, even on a crash (no stale lock file). Abstract
 * names are per network namespace, as the TCP ports they guard. `[server] share_listener = on`
 * skips the lock (two processes sharing a port on purpose, e.g. a binary upgrade).
 * Returns the lock's fd, -1 when sharing, or -2 (logged) when the address is taken.
 */
static bool is_wildcard(const char *host, size_t n)
{
    return (n == 7 && memcmp(host, "0.0.0.0", 7) == 0) || (n == 2 && memcmp(host, "::", 2) == 0);
}

/* A wildcard listener (0.0.0.0, ::) and one on a specific address of the same port also share
 * connections under SO_REUSEPORT, yet hold different lock names: after taking its own, a process
 * looks for the other kind among the bound abstract names (/proc/net/unix). Returns the other's
 * "host:port" (static buffer) or NULL. Two such processes starting at the same instant may both
 * refuse, which is loud rather than silent. */
static const char *overlapping_lock(const struct ldg_server_cfg *s)
{
    static char found[128];
    FILE *f = fopen("/proc/net/unix", "r");
    if (!f)
        return NULL;
    char line[512], port[24];
    snprintf(port, sizeof port, ":%lld", (long long)s->port);
    size_t plen = strlen(port), hlen = strlen(s->host);
    const char *hit = NULL;
    while (!hit && fgets(line, sizeof line, f)) {
        char *name = strstr(line, " @ledgerd:");
        if (!name)
            continue;
        name += 10;
        size_t n = strcspn(name, "\n");
        if (n <= plen || memcmp(name + n - plen, port, plen) != 0)
            continue;
        const char *host = name;
        size_t hn = n - plen;
        if (hn == hlen && memcmp(host, s->host, hlen) == 0)
            continue; /* our own name: nobody else can hold it */
        if (is_wildcard(host, hn) || is_wildcard(s->host, hlen)) {
            snprintf(found, sizeof found, "%.*s", (int)n, name);
            hit = found;
        }
    }
    fclose(f);
    return hit;
}

static int lock_address(const struct ldg_server_cfg *s)
{
    if (s->share_listener)
        return -1;
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "ledgerd:%s:%lld", s->host, (long long)s->port);
    if (n < 0 || (size_t)n >= sizeof un.sun_path - 1)
        n = (int)sizeof un.sun_path - 2;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ldg_log_error(NULL, "cannot create the address lock socket: %s", strerror(errno));
        return -2;
    }
    if (bind(fd, (const struct sockaddr *)&un,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            ldg_log_error(NULL,
                          "another ledgerd is already listening on %s:%lld; stop it first, or set "
                          "[server] share_listener = on to share the address on purpose",
                          s->host, (long long)s->port);
        else
            ldg_log_error(NULL, "cannot take the address lock for %s:%lld: %s", s->host, (long long)s->port,
                          strerror(e));
        return -2;
    }
    const char *other = overlapping_lock(s);
    if (other) {
        ldg_log_error(NULL,
                      "another ledgerd is already listening on %s, which overlaps %s:%lld; stop it first, or "
                      "set [server] share_listener = on to share the port on purpose",
                      other, s->host, (long long)s->port);
        close(fd);
        return -2;
    }
    return fd;
}

int ldg_server_run(const struct ldg_config *cfg)
{
    int lock_fd = lock_address(&cfg->server);
    if (lock_fd == -2)
        return 1;
    int rc = run(cfg);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

static int run(const struct ldg_config *cfg)
{
    struct ldg_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg = cfg;
    srv.started_unix = (uint64_t)time(NULL);
    if (RAND_bytes((unsigned char *)&srv.rid_seed, sizeof srv.rid_seed) != 1)
        srv.rid_seed = (uint32_t)uv_hrtime();
    signal(SIGPIPE, SIG_IGN);

    int rc = ldg_server_build_router(cfg, &srv.router);
    if (rc < 0) {
        ldg_log_error(NULL, "cannot build routes: %s", strerror(-rc));
        return 1;
    }
    size_t globals = 0;
    if (init_globals(cfg, &globals) < 0) {
        free_globals(cfg, globals);
        ldg_router_free(srv.router);
        return 1;
    }

    srv.loop = uv_default_loop();
    uv_signal_init(srv.loop, &srv.sig_term);
    uv_signal_init(srv.loop, &srv.sig_int);
    srv.sig_term.data = srv.sig_int.data = &srv;
    uv_signal_start(&srv.sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv.sig_int, on_signal, SIGINT);
    uv_async_init(srv.loop, &srv.on_worker_exit, on_worker_exit);
    srv.on_worker_exit.data = &srv;

    unsigned n = ldg_settings_workers(cfg);
    srv.workers = ldg_calloc(n, sizeof *srv.workers);
    for (unsigned i = 0; i < n; i++) {
        if (ldg_worker_start(&srv.workers[i], &srv, i) < 0) {
            srv.exit_code = 1;
            break;
        }
        srv.nworkers++;
    }
    if (srv.nworkers == n) {
        ldg_log_info(NULL, "ledgerd %s listening on %s:%lld with %u worker(s)", LDG_VERSION, cfg->server.host,
                     (long long)cfg->server.port, n);
    } else {
        shutdown_all(&srv, "startup failed");
        if (srv.nworkers == 0) {
            uv_close((uv_handle_t *)&srv.sig_term, NULL);
            uv_close((uv_handle_t *)&srv.sig_int, NULL);
            uv_close((uv_handle_t *)&srv.on_worker_exit, NULL);
        }
    }
    uv_run(srv.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < srv.nworkers; i++) {
        ldg_worker_join(&srv.workers[i]);
        if (srv.workers[i].exit_status)
            srv.exit_code = 1;
    }
    if (uv_loop_close(srv.loop) != 0) {
        ldg_log_error(NULL, "main loop closed with handles still open");
        srv.exit_code = 1;
    }
    free_globals(cfg, globals);
    free(srv.workers);
    ldg_router_free(srv.router);
    ldg_log_info(NULL, "stopped (exit %d)", srv.exit_code);
    return srv.exit_code;
}
