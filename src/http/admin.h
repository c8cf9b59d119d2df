/*
 * admin.h: the server's own endpoints, always on whatever the roles:
 *   GET /health       liveness: 200 {"status":"healthy"}
 *   GET /health/deep  real Redis and PostgreSQL round trips from this worker; 503 when degraded
 *   GET /metrics      Prometheus text format, every worker's counters; loopback clients only,
 *                     others need `Authorization: Bearer <metrics token>`
 *   GET|POST /_debug/sleep  only with [server] debug_endpoints = on (tests)
 * Registered on the main thread; handlers run on worker threads.
 */
#ifndef LDG_ADMIN_H
#define LDG_ADMIN_H

#include "http/router.h"

/* `debug` adds GET|POST /_debug/sleep?ms=N (answers after N ms; POST accepts a body of up to
 * 64 MiB and echoes nothing), used by the integration tests for drain and timeout behaviour. */
int ldg_admin_routes(struct ldg_router *r, bool debug) LDG_MUSTCHECK;

#endif
