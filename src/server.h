/*
 * server.h: the process: configuration, the shared router, the worker threads, and the main
 * thread's loop (signals, worker exits).
 *
 * Everything here is built on the main thread before workers start and is read-only afterwards,
 * except `workers[i].stats` (see stats.h).
 */
#ifndef LDG_SERVER_H
#define LDG_SERVER_H

#include <uv.h>

#include "core/worker.h"
#include "settings.h"

struct ldg_server {
    const struct ldg_config *cfg; /* borrowed */
    struct ldg_router *router;    /* owned */
    struct ldg_worker *workers;   /* owned array */
    unsigned nworkers;
    uint32_t rid_seed; /* random per process: prefix of generated request ids */
    uint64_t started_unix;

    uv_loop_t *loop; /* the main thread's loop (uv_default_loop) */
    uv_signal_t sig_term, sig_int;
    uv_async_t on_worker_exit;
    _Atomic unsigned exited; /* workers whose thread finished its loop */
    bool shutting_down;
    int exit_code;
};

/* Build the router, run init_global hooks, start workers, run the main loop until every worker
 * has drained and exited. Returns the process exit code. Main thread. */
int ldg_server_run(const struct ldg_config *cfg);

/* Build the router as ldg_server_run would (for tests / --check-config): 0 or negative. */
int ldg_server_build_router(const struct ldg_config *cfg, struct ldg_router **out) LDG_MUSTCHECK;

#endif
