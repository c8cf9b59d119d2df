/* keycache.c: see keycache.h. */
#include "auth/keycache.h"

#include <errno.h>
#include <hiredis/hiredis.h>

#include "auth/apikey.h"
#include "core/alloc.h"
#include "db/redis.h"

struct inval {
    unsigned pending;
    bool ok;
    ldg_keycache_cb cb;
    void *ud;
};

static void on_reply(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct inval *iv = ud;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        iv->ok = false;
    if (--iv->pending == 0) {
        iv->cb(iv->ok, iv->ud);
        free(iv);
    }
}

static bool is_digest(const char *d)
{
    size_t i = 0;
    for (; d[i]; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
            return false;
    return i == LDG_SHA256_HEX_LEN;
}

int ldg_keycache_invalidate(struct ldg_redis *r, const char *const *digests, size_t n, bool revoked,
                            ldg_keycache_cb cb, void *ud)
{
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!is_digest(digests[i]))
            return -EINVAL;
    if (!ldg_redis_connected(r))
        return -ENOTCONN;
    struct inval *iv = ldg_calloc(1, sizeof *iv);
    iv->ok = true;
    iv->cb = cb;
    iv->ud = ud;
    iv->pending = 1; /* held until every command is queued */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char key[sizeof LDG_KEYCACHE_PREFIX + LDG_SHA256_HEX_LEN];
        snprintf(key, sizeof key, LDG_KEYCACHE_PREFIX "%s", digests[i]);
        if (revoked)
            rc = ldg_redis_command(r, on_reply, iv, "SET %s %s EX %d", key, LDG_KEYCACHE_TOMBSTONE,
                                   LDG_KEYCACHE_TTL_S);
        else
            rc = ldg_redis_command(r, on_reply, iv, "DEL %s", key);
        if (rc == 0) {
            iv->pending++;
            rc = ldg_redis_command(r, on_reply, iv, "PUBLISH %s %s", LDG_KEYCACHE_CHANNEL, digests[i]);
            if (rc == 0)
                iv->pending++;
        }
    }
    if (rc < 0) {
        iv->ok = false;
        if (iv->pending == 1) { /* nothing queued: no callback */
            free(iv);
            return rc;
        }
    }
    /* Drop the hold; the remaining replies finish it. */
    iv->pending--;
    return 0;
}
