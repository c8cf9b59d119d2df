/*
 * redis.h: asynchronous Redis clients for one loop.
 *
 * Two connection types, each a hiredis 0.14 async context driven by our own uv_poll_t adapter
 * (hiredis 0.14 has no timeouts and its stock libuv adapter crashes on disconnect):
 *   - struct ldg_redis: commands. Replies arrive in the order commands were issued, so
 *     issuing several commands back to back pipelines them (one write, one round trip).
 *   - struct ldg_redis_sub: pub/sub. A subscribed connection can run nothing else, hence its
 *     own context. It keeps its own set of channels and subscribes them again after every
 *     reconnect.
 *
 * Both connect without blocking, send AUTH and SELECT when configured, enforce a connect deadline,
 * and reconnect with jittered exponential backoff (reconnect_min_ms doubling up to
 * reconnect_max_ms) whenever the connection fails. host should be an IP address or a unix socket
 * path starting with '/': hiredis resolves a name synchronously and tries only its first address.
 *
 * Deadlines: every command must be answered within command_timeout_ms. Because replies are
 * ordered, one late reply means every later reply is stuck behind it: the whole context is
 * dropped, every pending callback gets reply == NULL, and reconnection starts.
 *
 * Threading: an object belongs to the loop it was created on. Every function must be called on
 * that loop's thread and every callback runs there. None of these functions blocks.
 */
#ifndef LDG_DB_REDIS_H
#define LDG_DB_REDIS_H

#include <uv.h>

#include "core/common.h"
#include "core/config.h"

struct redisReply;

/* The [redis] section. Filled by the config module from ldg_redis_cfg_keys; immutable after
 * startup and shared read-only by every worker. Strings are owned by the config. */
struct ldg_redis_cfg {
    char *host;                 /* IP address, or unix socket path ('/...') */
    int64_t port;               /* TCP port (ignored for a unix socket) */
    char *password_file;        /* read by the core; "" means no AUTH */
    int64_t db;                 /* SELECTed after connect when not 0 */
    int64_t connect_timeout_ms; /* TCP connect + AUTH + SELECT must finish within this */
    int64_t command_timeout_ms; /* every reply must arrive within this after the command */
    int64_t reconnect_min_ms;   /* first reconnect delay (jittered) */
    int64_t reconnect_max_ms;   /* cap of the doubling reconnect delay */
    int64_t max_pending;        /* bound on commands in flight (and on channels for pub/sub) */
    char *project_shards;       /* [redis] only: "project_id:shard, ..." overrides (db/shardmap.h) */
};

/* Key table of the [redis] section and of the extra shards' [redis.1], [redis.2], ... ({0}-terminated). */
extern const struct ldg_cfg_key ldg_redis_cfg_keys[];

/* ---- command connection ---------------------------------------------------------------- */

struct ldg_redis;

/* Reply callback. `reply` is NULL when the command failed without a reply: connection lost,
 * command timeout, or ldg_redis_close. A Redis error reply (type REDIS_REPLY_ERROR) is a reply,
 * not NULL. `reply` is borrowed: it is freed when the callback returns (copy what you keep).
 * The callback may issue new commands and may call ldg_redis_close. */
typedef void (*ldg_redis_cb)(struct ldg_redis *r, struct redisReply *reply, void *ud);

/* Called once when ldg_redis_close / ldg_redis_sub_close has released everything. */
typedef void (*ldg_redis_closed_cb)(void *ud);

/* Start connecting (non-blocking) and return at once; never NULL (OOM aborts). `cfg` is
 * borrowed and must outlive the object; `password` (nullable, "" = none) and `name` (used in
 * log lines as `redis=<name>`) are copied. */
struct ldg_redis *ldg_redis_new(uv_loop_t *loop, const struct ldg_redis_cfg *cfg, const char *password,
                                const char *name);

/* Issue a command (printf-like hiredis format: %s for C strings, %b for pointer + size_t).
 * Returns 0 when queued: `cb` is then called exactly once, on the loop thread, and never from
 * inside this call. Otherwise returns at once, with no callback:
 *   -ENOTCONN  not connected (connecting, waiting to reconnect, or closing)
 *   -EAGAIN    max_pending commands already in flight (callers answer 503)
 *   -EINVAL    bad format string
 * Arguments are copied into the output buffer before this returns. */
int ldg_redis_command(struct ldg_redis *r, ldg_redis_cb cb, void *ud, const char *fmt, ...) LDG_MUSTCHECK;

/* Same with an argument vector (binary safe). argv/argvlen are borrowed for the call only;
 * argvlen may be NULL for NUL-terminated arguments. */
int ldg_redis_commandargv(struct ldg_redis *r, ldg_redis_cb cb, void *ud, int argc, const char **argv,
                          const size_t *argvlen) LDG_MUSTCHECK;

/* True once connected and AUTH/SELECT succeeded; false while connecting or reconnecting. */
bool ldg_redis_connected(const struct ldg_redis *r);

/* Commands in flight. */
size_t ldg_redis_pending(const struct ldg_redis *r);

/* Failures since creation: commands answered with NULL (lost, timed out, closed) plus failed
 * connection attempts. Redis error replies are not counted. Read on the loop thread. */
uint64_t ldg_redis_errors(const struct ldg_redis *r);

/* Close: every pending callback gets NULL (from inside this call, or, when called from a reply
 * callback, right after that callback returns), every handle is closed, the memory is freed in
 * the close callbacks, and then `on_closed(ud)` (nullable) runs. `r` must not be used after this
 * call. Call at most once; may be called from a reply callback. */
void ldg_redis_close(struct ldg_redis *r, ldg_redis_closed_cb on_closed, void *ud);

/* ---- Lua scripts ------------------------------------------------------------------------- */

/* A script sent by digest (EVALSHA) and by body (EVAL) only when Redis answers NOSCRIPT (after a
 * restart or SCRIPT FLUSH). Initialised once (main thread), then read-only: any thread. */
struct ldg_redis_script {
    const char *body; /* borrowed: a static string */
    size_t len;
    char sha[41]; /* lowercase hex SHA-1 of body */
};

void ldg_redis_script_init(struct ldg_redis_script *s, const char *body);

/* The first two arguments of a call: "EVALSHA", sha (or "EVAL", body when eval). */
void ldg_redis_script_head(const struct ldg_redis_script *s, bool eval, const char **argv, size_t *argl);

/* Is reply Redis's NOSCRIPT error (the digest is unknown: send the body)? */
bool ldg_redis_noscript(const struct redisReply *reply);

/* ---- pub/sub connection ---------------------------------------------------------------- */

struct ldg_redis_sub;

/* A message published on a subscribed channel. `channel` and `msg` are borrowed for the call
 * and not NUL-terminated. The callback may subscribe, unsubscribe and close. */
typedef void (*ldg_redis_msg_cb)(struct ldg_redis_sub *s, const char *channel, size_t chlen, const char *msg,
                                 size_t msglen, void *ud);

/* Start connecting and return at once; never NULL. Same borrowing rules as ldg_redis_new. AUTH
 * is sent when configured (SELECT is not: channels are global). `ud` is passed to on_message. */
struct ldg_redis_sub *ldg_redis_sub_new(uv_loop_t *loop, const struct ldg_redis_cfg *cfg,
                                        const char *password, const char *name, ldg_redis_msg_cb on_message,
                                        void *ud);

/* Add a channel (NUL-terminated, copied) to the set and subscribe it now if connected, or on
 * connect. Works while disconnected. Returns 0 (also when already in the set), -EINVAL for an
 * empty name, -EAGAIN when the set already holds max_pending channels. */
int ldg_redis_sub_subscribe(struct ldg_redis_sub *s, const char *channel) LDG_MUSTCHECK;

/* Remove a channel from the set (UNSUBSCRIBE if connected). Returns 0, or -ENOENT when the
 * channel was not in the set. Messages already in flight may still be delivered. */
int ldg_redis_sub_unsubscribe(struct ldg_redis_sub *s, const char *channel) LDG_MUSTCHECK;

/* Called once the (UN)SUBSCRIBEs sent before ldg_redis_sub_barrier are confirmed (ok = true), or
 * when the connection is lost or closed first (ok = false). */
typedef void (*ldg_redis_sub_barrier_cb)(struct ldg_redis_sub *s, bool ok, void *ud);

/* Wait until every SUBSCRIBE and UNSUBSCRIBE sent so far has been confirmed by the server: from
 * then on, every message published on a channel of the set reaches on_message. A reader that
 * must not miss anything (subscribe, then read what was published before) reads after this.
 * Returns 1 when nothing awaits confirmation (cb is not called: go on at once), 0 when cb will be
 * called, -ENOTCONN while disconnected (cb is not called; the set is subscribed again on
 * reconnect). The wait is bounded by command_timeout_ms, like every confirmation. */
int ldg_redis_sub_barrier(struct ldg_redis_sub *s, ldg_redis_sub_barrier_cb cb, void *ud) LDG_MUSTCHECK;

/* True while connected (channels may still be awaiting their SUBSCRIBE confirmation). */
bool ldg_redis_sub_connected(const struct ldg_redis_sub *s);

/* Number of channels in the set. */
size_t ldg_redis_sub_channels(const struct ldg_redis_sub *s);

/* Failed connection attempts plus connections dropped (lost, or a SUBSCRIBE/UNSUBSCRIBE
 * confirmation later than command_timeout_ms). */
uint64_t ldg_redis_sub_errors(const struct ldg_redis_sub *s);

/* Same contract as ldg_redis_close; no message is delivered once this is called. */
void ldg_redis_sub_close(struct ldg_redis_sub *s, ldg_redis_closed_cb on_closed, void *ud);

#endif
