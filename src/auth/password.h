/*
 * password.h: password hashing (argon2id) and verification (argon2id and bcrypt), and a per-loop
 * pool that runs both on the libuv thread pool so that no loop thread ever hashes.
 *
 * Policy (decisions D3): new hashes are argon2id, v=19, m=19456 KiB, t=2, p=1, 16-byte salt from
 * RAND_bytes, 32-byte tag, stored in the PHC encoded form `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<tag>`.
 * Verification also accepts bcrypt `$2a$`/`$2b$`/`$2y$` hashes (imported v1 accounts: cost 12 for
 * passwords, 10 for API keys). Stored hashes whose cost parameters exceed the limits below are
 * refused with -EINVAL instead of being run, so a corrupt row cannot pin a pool thread or allocate
 * gigabytes.
 *
 * Threading: the *_sync functions are pure and thread-safe; they take tens of milliseconds and
 * must never run on a loop thread. A struct ldg_password_pool belongs to the loop it was created
 * on: every ldg_password_pool_* / ldg_password_* call must be made on that loop's thread and every
 * callback runs there. The work itself runs on libuv's process-wide thread pool, which is shared
 * with uv_fs_* and getaddrinfo; max_inflight bounds how many of its threads one loop can occupy.
 */
#ifndef LDG_AUTH_PASSWORD_H
#define LDG_AUTH_PASSWORD_H

#include <uv.h>

#include "core/common.h"

/* Parameters of new hashes. */
#define LDG_PASSWORD_ARGON2_M_KIB 19456u
#define LDG_PASSWORD_ARGON2_T 2u
#define LDG_PASSWORD_ARGON2_P 1u
#define LDG_PASSWORD_SALT_BYTES 16u
#define LDG_PASSWORD_TAG_BYTES 32u

/* Limits on stored hashes accepted by verify (anything above is -EINVAL). */
#define LDG_PASSWORD_ARGON2_MAX_M_KIB (256u * 1024u)
#define LDG_PASSWORD_ARGON2_MAX_T 16u
#define LDG_PASSWORD_ARGON2_MAX_P 8u
#define LDG_PASSWORD_BCRYPT_MAX_COST 16

/* Longest accepted password in bytes (the HTTP layer enforces the real 8..64 character rule;
 * this only bounds the copy). bcrypt uses the first 72 bytes, as every bcrypt does. */
#define LDG_PASSWORD_MAX_BYTES 1024u

/* Room for any encoded hash this module produces or accepts, NUL included. */
#define LDG_PASSWORD_HASH_MAX 192u

/* Hash `pw` (NUL-terminated, borrowed) into `out` as an argon2id encoded string.
 * Returns 0, -EINVAL (pw NULL or longer than LDG_PASSWORD_MAX_BYTES), -ENOSPC (cap too small; 128
 * is enough, LDG_PASSWORD_HASH_MAX always is), -EIO (no randomness), -ENOMEM (argon2 could not get
 * its 19 MiB). Any thread; blocking (about 20-100 ms of CPU). */
int ldg_password_hash_sync(const char *pw, char *out, size_t cap) LDG_MUSTCHECK;

/* Check `pw` against `encoded` (argon2id or bcrypt $2a$/$2b$/$2y$), both borrowed.
 * Returns 1 match, 0 mismatch, -EINVAL (malformed or unsupported hash, parameters over the limits,
 * password too long), -ENOMEM. Comparison is constant-time. Any thread; blocking. */
int ldg_password_verify_sync(const char *pw, const char *encoded) LDG_MUSTCHECK;

/* A fixed argon2id hash with the current parameters, of a password nobody knows. Static storage. */
const char *ldg_password_dummy_hash(void);

/* ---- per-loop pool ---- */

struct ldg_password_pool;

/* Completion. Hash: result 0 and `hash` (borrowed for the call only; copy it) or result < 0 and
 * hash NULL. Verify: result 1 match, 0 mismatch, < 0 error, hash NULL. result is -ECANCELED when
 * the pool closed before the job ran. Runs on the pool's loop, never from inside the call that
 * submitted the job. The callback may submit new jobs or close the pool. */
typedef void (*ldg_password_cb)(int result, const char *hash, void *ud);

typedef void (*ldg_password_closed_cb)(void *ud);

/* Create a pool on `loop` (borrowed; must outlive the pool). At most max_inflight (>= 1) jobs of
 * this pool run on the thread pool at once; up to max_queued more wait in FIFO order; beyond that
 * submissions fail with -EAGAIN. Never NULL. Holds no libuv handle. */
struct ldg_password_pool *ldg_password_pool_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_queued);

/* Submit a hash of `pw` (copied; the copy is wiped after use). Returns 0 and cb runs exactly once
 * later, or without callback: -EAGAIN (queue full: answer 429/503), -ECANCELED (pool closing),
 * -EINVAL (pw NULL or too long). */
int ldg_password_hash(struct ldg_password_pool *p, const char *pw, ldg_password_cb cb,
                      void *ud) LDG_MUSTCHECK;

/* Submit a verify of `pw` against `encoded` (both copied; the password copy is wiped after use).
 * Same return codes and callback rule as ldg_password_hash; -EINVAL also for encoded NULL or
 * longer than LDG_PASSWORD_HASH_MAX - 1. */
int ldg_password_verify(struct ldg_password_pool *p, const char *pw, const char *encoded, ldg_password_cb cb,
                        void *ud) LDG_MUSTCHECK;

/* Spend the same work as a verify against a stored argon2id hash, then report a mismatch (0) or
 * an error: for logins naming an unknown account, so their timing matches a wrong password.
 * Goes through the same queue and limits as ldg_password_verify. */
int ldg_password_dummy_verify(struct ldg_password_pool *p, const char *pw, ldg_password_cb cb,
                              void *ud) LDG_MUSTCHECK;

struct ldg_password_pool_stats {
    unsigned inflight; /* submitted to the thread pool, not yet completed */
    unsigned queued;   /* waiting for an in-flight slot */
    uint64_t rejected; /* submissions refused with -EAGAIN since creation */
};
void ldg_password_pool_stats(const struct ldg_password_pool *p, struct ldg_password_pool_stats *out);

/* Close: queued jobs get -ECANCELED (from inside this call); in-flight jobs that have not started
 * are cancelled (-ECANCELED), those already running finish and deliver their real result. Once
 * none is left, the pool is freed and on_closed(ud) (nullable) runs: from inside this call when
 * nothing was in flight, else right after the last completion callback. May be called from a pool
 * callback (on_closed then runs once that callback has returned, at the earliest). Call once;
 * `p` must not be used after this call except by the callbacks still due. */
void ldg_password_pool_close(struct ldg_password_pool *p, ldg_password_closed_cb on_closed, void *ud);

#endif
