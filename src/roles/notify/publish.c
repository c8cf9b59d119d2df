/*
 * publish.c: the producer side of the notifications role (see notify.h): ldg_notify_publish,
 * called by ingest for the error logs of an accepted request, and ldg_notify_prefs_changed,
 * called by auth when an account's preferences change. Any worker thread; the stream side is
 * notify.c.
 */
#include "roles/notify/notify.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/redis.h"
#include "roles/notify/keys.h"
#include "settings.h"

/*
 * KEYS: replay stream, id sequence, id clock. ARGV: maxlen, events channel, errors channel,
 * ttl ms, notes... Returns the number published. Only error notifications (bare JSON, "{...}") go
 * to the errors channel: typed events ("<name>\n<json>") are for the streams.
 *
 * Ids are "<ms>-<seq>" with seq from one counter shared by every project and ms never going
 * back (the clock key), so ids are unique across projects and ordered as published: one
 * Last-Event-ID is an exact cursor over all of a stream's projects.
 */
static const char publish_lua[] = "local t = redis.call('TIME')\n"
                                  "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
                                  "local last = tonumber(redis.call('GET', KEYS[3]) or '0')\n"
                                  "if ms < last then ms = last end\n"
                                  "local n = 0\n"
                                  "for i = 5, #ARGV do\n"
                                  "  local id = string.format('%d-%d', ms, redis.call('INCR', KEYS[2]))\n"
                                  "  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, 'd', ARGV[i])\n"
                                  "  redis.call('PUBLISH', ARGV[2], id .. '\\n' .. ARGV[i])\n"
                                  "  if string.byte(ARGV[i], 1) == 123 then redis.call('PUBLISH', ARGV[3], ARGV[i]) end\n"
                                  "  n = n + 1\n"
                                  "end\n"
                                  "redis.call('SET', KEYS[3], ms)\n"
                                  "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
                                  "return n\n";

static struct ldg_redis_script publish_script;
static uv_once_t script_once = UV_ONCE_INIT;

static void init_script(void)
{
    ldg_redis_script_init(&publish_script, publish_lua);
}

static void on_prefs_announced(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud;
}

/* ---- publishing ------------------------------------------------------------------------------------ */

struct publish {
    struct ldg_worker *w;
    int argc;
    bool retried;
    const char **argv; /* into `text` and the fixed strings below */
    size_t *argl;
    char key[64], events[64], errors[64], maxlen[24], ttl[24];
    char *text; /* owned: the notes */
};

static void publish_free(struct publish *p)
{
    free(p->argv);
    free(p->argl);
    free(p->text);
    free(p);
}

static void on_published(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct publish *p = ud;
    if (reply && !p->retried && ldg_redis_noscript(reply)) {
        p->retried = true;
        ldg_redis_script_head(&publish_script, true, p->argv, p->argl);
        if (ldg_redis_commandargv(r, on_published, p, p->argc, p->argv, p->argl) == 0)
            return;
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        ldg_log_warn(NULL, "notifications: publish failed: %s", reply->str);
    }
    publish_free(p);
}

static const struct ldg_notify_cfg *cfg_of(const struct ldg_config *c)
{
    int i = ldg_role_index("notifications");
    return i >= 0 ? c->role_cfg[i] : NULL;
}

void ldg_notify_publish(struct ldg_worker *w, int64_t project_id, const char *notes, const size_t *off,
                        size_t n)
{
    const struct ldg_notify_cfg *cfg = cfg_of(w->cfg);
    if (!n || !cfg || !cfg->enabled)
        return;
    uv_once(&script_once, init_script);
    struct publish *p = ldg_calloc(1, sizeof *p);
    p->w = w;
    p->argc = 10 + (int)n; /* EVALSHA sha numkeys, 3 keys, 4 fixed arguments, the notes */
    p->argv = ldg_calloc((size_t)p->argc, sizeof *p->argv);
    p->argl = ldg_calloc((size_t)p->argc, sizeof *p->argl);
    p->text = ldg_malloc(off[n] - off[0] + 1);
    memcpy(p->text, notes + off[0], off[n] - off[0]);
    ldg__notify_channel(p->key, sizeof p->key, REPLAY_PREFIX, project_id);
    ldg__notify_channel(p->events, sizeof p->events, EVENTS_PREFIX, project_id);
    ldg__notify_channel(p->errors, sizeof p->errors, ERRORS_PREFIX, project_id);
    snprintf(p->maxlen, sizeof p->maxlen, "%" PRId64, cfg->replay_events ? cfg->replay_events : 1);
    snprintf(p->ttl, sizeof p->ttl, "%" PRId64, cfg->replay_window_ms);
    ldg_redis_script_head(&publish_script, false, p->argv, p->argl);
    const char *fixed[] = {"3", p->key, SEQ_KEY, CLOCK_KEY, p->maxlen, p->events, p->errors, p->ttl};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(fixed); i++) {
        p->argv[2 + i] = fixed[i];
        p->argl[2 + i] = strlen(fixed[i]);
    }
    for (size_t i = 0; i < n; i++) {
        p->argv[10 + i] = p->text + (off[i] - off[0]);
        p->argl[10 + i] = off[i + 1] - off[i];
    }
    if (ldg_redis_commandargv(ldg_worker_redis_for(w, project_id), on_published, p, p->argc, p->argv,
                              p->argl) < 0) {
        ldg_log_debug(NULL, "notifications: publish not sent (Redis unavailable or busy)");
        publish_free(p);
    }
}

void ldg_notify_publish_event(struct ldg_worker *w, int64_t project_id, const char *name, const char *json,
                              size_t len)
{
    size_t nlen = strlen(name);
    char *note = ldg_malloc(nlen + 1 + len);
    memcpy(note, name, nlen);
    note[nlen] = '\n';
    memcpy(note + nlen + 1, json, len);
    size_t off[2] = {0, nlen + 1 + len};
    ldg_notify_publish(w, project_id, note, off, 1);
    free(note);
}

void ldg_notify_prefs_changed(struct ldg_worker *w, int64_t account_id)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account_id);
    const char *argv[] = {"PUBLISH", PREFS_CHANNEL, id};
    if (ldg_redis_commandargv(w->redis, on_prefs_announced, NULL, 3, argv, NULL) < 0)
        ldg_log_warn(NULL, "notifications: preference change of account=%" PRId64 " not announced",
                     account_id);
}
