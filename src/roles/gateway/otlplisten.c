/*
 * otlplisten.c: see otlplisten.h.
 */
#include "roles/gateway/otlplisten.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/conn.h"
#include "settings.h"

/* "host:port" or "[v6]:port" into a socket address; AF_INET/AF_INET6, or -EINVAL. */
static int parse(const char *spec, struct sockaddr_storage *ss, long *port_out)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec)
        return -EINVAL;
    char host[64];
    const char *h = spec;
    size_t hl = (size_t)(colon - spec);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || port < 1 || port > 65535)
        return -EINVAL;
    *port_out = port;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return AF_INET;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return AF_INET6;
    return -EINVAL;
}

int ldg__otlp_listen_check(const char *spec, const struct ldg_config *c)
{
    if (!spec || !*spec)
        return 0;
    struct sockaddr_storage ss;
    long port = 0;
    if (parse(spec, &ss, &port) < 0) {
        ldg_log_error("role=gateway",
                      "[gateway] otlp_listen must be host:port with an IP address literal "
                      "([v6]:port for IPv6), not '%s'",
                      spec);
        return -EINVAL;
    }
    if (port == c->server.port) {
        ldg_log_error("role=gateway",
                      "[gateway] otlp_listen must use another port than [server] port (%ld): the "
                      "OTLP routes are served there already",
                      port);
        return -EINVAL;
    }
    return 0;
}

int ldg__otlp_listen_start(struct ldg_worker *w, const char *spec, struct ldg__otlp_listener *l)
{
    memset(l, 0, sizeof *l);
    l->closed = true;
    if (!spec || !*spec)
        return 0;
    struct sockaddr_storage ss;
    long port;
    int af = parse(spec, &ss, &port);
    if (af < 0)
        return af;
    int rc = uv_tcp_init_ex(&w->loop, &l->tcp, (unsigned)af);
    if (rc < 0)
        return rc;
    l->open = true;
    l->closed = false;
    l->tcp.data = w;
    uv_os_fd_t fd;
    int one = 1;
    if ((rc = uv_fileno((uv_handle_t *)&l->tcp, &fd)) < 0 ||
        (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 && (rc = -errno) < 0) ||
        (rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&l->tcp, (int)w->cfg->server.backlog, ldg_conn_on_otlp_connection)) <
            0) {
        ldg_log_error("role=gateway", "cannot listen on [gateway] otlp_listen %s: %s", spec, uv_strerror(rc));
        ldg__otlp_listen_stop(l);
        return rc;
    }
    if (w->id == 0)
        ldg_log_info("role=gateway", "OTLP/HTTP listener on %s", spec);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct ldg__otlp_listener *l = (struct ldg__otlp_listener *)h;
    l->closed = true;
}

void ldg__otlp_listen_stop(struct ldg__otlp_listener *l)
{
    if (!l->open)
        return;
    l->open = false;
    uv_close((uv_handle_t *)&l->tcp, on_closed);
}

bool ldg__otlp_listen_closed(const struct ldg__otlp_listener *l)
{
    return l->closed;
}
