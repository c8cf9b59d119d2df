/*
 * otlplisten.h: the optional OTLP-only listener of the gateway role ([gateway] otlp_listen, e.g.
 * 0.0.0.0:4318, the port OpenTelemetry clients default to for OTLP/HTTP). Every worker binds the
 * address with SO_REUSEPORT like the main listener; its connections are ordinary connections of the
 * worker (same limits, deadlines, authentication and handlers) that see only the routes flagged
 * LDG_ROUTE_OTLP_LISTENER (POST /v1/logs, /v1/traces, /v1/metrics): any other request is a 404.
 * Empty = no listener. Not guarded by the main address's single-process lock (server.c).
 *
 * Threading: check on the main thread at start; the rest on the owning worker's loop thread.
 */
#ifndef LDG_ROLES_GATEWAY_OTLPLISTEN_H
#define LDG_ROLES_GATEWAY_OTLPLISTEN_H

#include <stdbool.h>
#include <uv.h>

struct ldg_worker;
struct ldg_config;

struct ldg__otlp_listener {
    uv_tcp_t tcp;
    bool open;   /* tcp initialised (close it) */
    bool closed; /* its close callback ran, or it was never opened */
};

/* Is spec empty or a usable "host:port" ("[v6]:port" for IPv6) on another port than [server]
 * port? 0, or -EINVAL after logging why. */
int ldg__otlp_listen_check(const char *spec, const struct ldg_config *c);
/* Bind and listen on spec (nothing for ""); 0 or a negative code (logged). l is zeroed here. */
int ldg__otlp_listen_start(struct ldg_worker *w, const char *spec, struct ldg__otlp_listener *l);
/* Stop accepting (close the socket); idempotent. */
void ldg__otlp_listen_stop(struct ldg__otlp_listener *l);
bool ldg__otlp_listen_closed(const struct ldg__otlp_listener *l);

#endif
