/*
 * log.h: logfmt (or plain) lines to stderr, one write(2) per line so lines from different
 * threads never interleave. The level is checked before any formatting happens.
 *
 * Context: every line carries `worker=<id>` of the calling thread (set once per thread with
 * ldg_log_set_worker; the main thread is "main") and the caller's context fields, a preformatted
 * logfmt fragment such as "conn=12 role=gateway" (borrowed for the call; may be NULL).
 * Thread-safe.
 */
#ifndef LDG_LOG_H
#define LDG_LOG_H

#include "core/common.h"

enum ldg_log_level { LDG_LOG_DEBUG, LDG_LOG_INFO, LDG_LOG_WARN, LDG_LOG_ERROR };
enum ldg_log_format { LDG_LOG_LOGFMT, LDG_LOG_PLAIN };

/* Set once at startup, before worker threads start; read-only afterwards. */
extern enum ldg_log_level ldg_log_min_level;
void ldg_log_configure(enum ldg_log_level level, enum ldg_log_format format);
/* logfmt lines carry node=<name> ([node] name) after the level. Main thread, before workers start. */
void ldg_log_set_node(const char *name);

/* Thread-local worker id for the `worker=` field; -1 means the main thread. */
void ldg_log_set_worker(int id);

void ldg_log_write(enum ldg_log_level level, const char *ctx, const char *fmt, ...) LDG_PRINTF(3, 4);

/* Write a raw preformatted logfmt line (no msg quoting); used by the access log. */
void ldg_log_raw(enum ldg_log_level level, const char *fields);

/* Escape `s` as a logfmt value into out (always quoted); returns bytes written, truncating. */
size_t ldg_log_quote(char *out, size_t cap, const char *s, size_t n);

#define LDG_LOG_AT(lvl, ctx, ...)                                                                            \
    do {                                                                                                     \
        if ((lvl) >= ldg_log_min_level)                                                                      \
            ldg_log_write((lvl), (ctx), __VA_ARGS__);                                                        \
    } while (0)
#define ldg_log_debug(ctx, ...) LDG_LOG_AT(LDG_LOG_DEBUG, ctx, __VA_ARGS__)
#define ldg_log_info(ctx, ...) LDG_LOG_AT(LDG_LOG_INFO, ctx, __VA_ARGS__)
#define ldg_log_warn(ctx, ...) LDG_LOG_AT(LDG_LOG_WARN, ctx, __VA_ARGS__)
#define ldg_log_error(ctx, ...) LDG_LOG_AT(LDG_LOG_ERROR, ctx, __VA_ARGS__)

#endif
