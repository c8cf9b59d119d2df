/*
 * alerting.h: the alerting jobs of the analytics role (docs/alerts.md): the rule evaluator, the
 * monitor checker and the cleanup of notifications, alert history, deliveries and checks.
 * analytics.c schedules them like its other jobs (once per slot across the fleet, through the
 * Redis lock) and calls these to run one pass.
 *
 * Threading: worker 0's loop (analytics jobs); `stopping` is read at every step.
 */
#ifndef LDG_ROLES_ANALYTICS_ALERTING_H
#define LDG_ROLES_ANALYTICS_ALERTING_H

#include <stdbool.h>

struct ldg_worker;
struct ldg_analytics_cfg;

/* One pass ended; error is a static text for /health/deep, or NULL. */
typedef void (*ldg_alerting_done_fn)(void *ud, const char *error);

/* Evaluate the enabled rules: fire on the transition to breaching, resolve on the way back. */
void ldg__alerting_evaluate(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                            ldg_alerting_done_fn done, void *ud);

/* Monitors: late heartbeats go down; due http checks run (bounded by the outgoing client). */
void ldg__alerting_monitors(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                            ldg_alerting_done_fn done, void *ud);

/* Delete what is older than the retention settings. */
void ldg__alerting_cleanup(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                           ldg_alerting_done_fn done, void *ud);

#endif
