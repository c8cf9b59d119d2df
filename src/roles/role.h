/*
 * role.h: a role is a loop module (nginx lifecycle hooks, h2o per-context init, Fluent Bit
 * config maps). The registry (registry.c) holds the static table in start order; each role is
 * switched on by `[roles] <name> = on|off`. A disabled role's section is still parsed and
 * validated, but none of its other hooks run.
 *
 * Order: init_global (main thread, start order) -> routes (main thread) -> init_worker (each
 * worker's loop thread) ... stop_worker (reverse order, worker thread) -> drained polled until
 * true -> free_worker (reverse order) -> free_global (main thread, reverse order).
 */
#ifndef LDG_ROLE_H
#define LDG_ROLE_H

#include "core/common.h"
#include "core/buf.h"
#include "core/config.h"

#define LDG_ROLE_MAX 8

struct ldg_config;
struct ldg_worker;
struct ldg_router;

struct ldg_role {
    const char *name;               /* "ingest": INI section, [roles] key, log prefix */
    const struct ldg_cfg_key *keys; /* this role's section table; {0}-terminated */
    size_t cfg_size;                /* the core allocates it zeroed, then fills defaults and parses */
    int (*validate)(const void *cfg, struct ldg_cfg_err *err);       /* cross-key checks; no side effects */
    int (*init_global)(const struct ldg_config *c, const void *cfg); /* main thread; may fail startup */
    void (*routes)(struct ldg_router *r, const void *cfg);           /* add endpoints; NULL if none */
    int (*init_worker)(struct ldg_worker *w, const void *cfg, void **state); /* worker's loop thread */
    void (*stop_worker)(struct ldg_worker *w, void *state);         /* begin draining; never blocks */
    bool (*drained)(const struct ldg_worker *w, const void *state); /* true once its handles are closed */
    void (*free_worker)(struct ldg_worker *w, void *state);
    void (*free_global)(void);
    /* Optional: write this role's /health/deep value (one JSON object, e.g. {"status":"running",...}). */
    void (*health)(const struct ldg_worker *w, const void *state, struct ldg_buf *out);
};

/* The registry: every compiled-in role in start order. */
extern const struct ldg_role *const ldg_roles[];
extern const size_t ldg_roles_count;

/* Index of a role by name, or -1. */
int ldg_role_index(const char *name);

#endif
