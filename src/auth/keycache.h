/*
 * keycache.h: the shared contract of the API-key caches (decisions D3).
 *
 * Gateways cache validated keys twice: in Redis under `api_key:<sha256 hex of the key>` (JSON,
 * TTL LDG_KEYCACHE_TTL_S, shared by every gateway process) and in a small per-loop table. Whoever
 * changes a key (revocation) or what a cached entry holds (a project's quota or limits) calls
 * ldg_keycache_invalidate, which for each digest
 *   - revoked: SET api_key:<digest> "revoked" EX LDG_KEYCACHE_TTL_S: a tombstone that gateways
 *     read as "refuse with 401" and that their cache fills (SET ... NX) cannot overwrite;
 *   - changed: DEL api_key:<digest>;
 * and then PUBLISH LDG_KEYCACHE_CHANNEL <digest>, which every gateway loop is subscribed to and
 * which evicts the digest from its per-loop table. That is how a revocation reaches every gateway
 * within a second.
 *
 * Session liveness uses the key `session:<sid>` (value: account id, TTL = the session's refresh
 * lifetime): present = the session's access tokens are accepted; deleted on logout/revocation.
 *
 * Threading: the Redis client's loop thread.
 */
#ifndef LDG_AUTH_KEYCACHE_H
#define LDG_AUTH_KEYCACHE_H

#include "core/common.h"

#define LDG_KEYCACHE_PREFIX "api_key:"
#define LDG_KEYCACHE_CHANNEL "ledger:api_key:invalidate"
#define LDG_KEYCACHE_TOMBSTONE "revoked"
#define LDG_KEYCACHE_TTL_S 300
#define LDG_SESSION_PREFIX "session:"
/* PUBLISH <sid> after a session key is deleted (logout, revocation, password change): every loop
 * that streams to that session ends the stream (notifications role). */
#define LDG_SESSION_REVOKED_CHANNEL "ledger:session:revoked"

struct ldg_redis;

/* ok: every command got a non-error reply. Runs once, never from inside the call. */
typedef void (*ldg_keycache_cb)(bool ok, void *ud);

/* Invalidate n digests (64 hex chars each, borrowed for the call). Returns 0 (cb will run), or
 * without callback -ENOTCONN/-EAGAIN (Redis unavailable: the caller must report failure) or
 * -EINVAL (n == 0 or a malformed digest). */
int ldg_keycache_invalidate(struct ldg_redis *r, const char *const *digests, size_t n, bool revoked,
                            ldg_keycache_cb cb, void *ud) LDG_MUSTCHECK;

#endif
