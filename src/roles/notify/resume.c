/*
 * resume.c: Last-Event-ID resume of notification streams (see notify.h): the replay read of each
 * project's capped stream, bounded in entries and bytes, merged in id order, then LIVE.
 */
#include "roles/notify/notify.h"
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include "auth/keycache.h"
#include "auth/principal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "db/redis.h"
#include "http/chunk.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/router.h"
#include "notify/event.h"
#include "notify/prefs.h"
#include "notify/tailmsg.h"
#include "roles/notify/hub.h"
#include "roles/notify/keys.h"
#include "settings.h"

#define G ldg__notify

/* ---- resume -------------------------------------------------------------------------------------- */

static int rep_cmp(const void *a, const void *b)
{
    return ldg_event_id_cmp(&((const struct rep *)a)->id, &((const struct rep *)b)->id);
}

static void replay_finish(struct client *cl)
{
    struct hub *h = cl->hub;
    if (!cl->conn) {
        ldg__notify_free_replay(cl);
        return;
    }
    if (cl->nreps)
        qsort(cl->reps, cl->nreps, sizeof *cl->reps, rep_cmp);
    size_t first = cl->nreps > (size_t)G.cfg->replay_events ? cl->nreps - (size_t)G.cfg->replay_events : 0;
    for (size_t i = first; i < cl->nreps && cl->conn; i++) {
        struct rep *r = &cl->reps[i];
        struct ldg_str name, data;
        if (!ldg_event_note(r->json, r->len, &name, &data))
            continue;
        bool is_log = r->json[0] == '{';
        cJSON *root = is_log ? ldg_json_parse(data.p, data.n) : NULL;
        struct ldg_str level, type;
        ldg__notify_json_string_member(root, "level", &level);
        ldg__notify_json_string_member(root, "log_type", &type);
        bool ok = ldg_prefs_allow(&cl->acct->prefs, r->m->proj->id, is_log ? level.p : NULL, level.n, type.p,
                                  type.n);
        cJSON_Delete(root);
        char ename[40];
        snprintf(ename, sizeof ename, "%.*s", (int)name.n, name.p);
        struct ldg_chunk *ch =
            ldg__notify_event_chunk(h, r->idtext, strlen(r->idtext), ename, data.p, data.n);
        ldg__notify_deliver(r->m, &r->id, ch, ok);
        ldg_chunk_unref(ch);
    }
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&cl->pending))) {
        struct pend *p = ldg_container_of(n, struct pend, node);
        ldg__notify_deliver(p->m, &p->id, p->ch, p->ok);
        ldg_chunk_unref(p->ch);
        free(p);
    }
    ldg__notify_free_replay(cl);
    cl->state = CL_LIVE;
}

struct xrange {
    struct client *cl;
    struct member *m;
};

static void on_xrange(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct xrange *x = ud;
    struct client *cl = x->cl;
    struct member *m = x->m;
    struct hub *h = cl->hub;
    free(x);
    cl->replies_due--;
    if (cl->conn && reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
                e->element[1]->elements != 2)
                continue;
            const redisReply *f = e->element[1];
            struct ldg_event_id id;
            if (f->element[1]->type != REDIS_REPLY_STRING ||
                !ldg_event_id_parse(e->element[0]->str, e->element[0]->len, &id) ||
                e->element[0]->len > LDG_EVENT_ID_MAX)
                continue;
            size_t add = f->element[1]->len + sizeof(struct rep);
            if (cl->rep_bytes + add > (size_t)G.cfg->replay_max_bytes) {
                if (!cl->rep_truncated)
                    ldg_log_info(NULL,
                                 "notifications: resume bounded at %zu bytes; older entries not replayed",
                                 cl->rep_bytes);
                cl->rep_truncated = true;
                break;
            }
            cl->rep_bytes += add;
            if (cl->nreps == cl->reps_cap) {
                cl->reps_cap = cl->reps_cap ? cl->reps_cap * 2 : 16;
                cl->reps = ldg_realloc(cl->reps, cl->reps_cap * sizeof *cl->reps);
            }
            struct rep *rp = &cl->reps[cl->nreps++];
            rp->id = id;
            rp->m = m;
            rp->len = f->element[1]->len;
            rp->json = ldg_malloc(rp->len + 1);
            memcpy(rp->json, f->element[1]->str, rp->len);
            rp->json[rp->len] = 0;
            memcpy(rp->idtext, e->element[0]->str, e->element[0]->len);
            rp->idtext[e->element[0]->len] = 0;
        }
    } else if (cl->conn && !reply) {
        ldg_log_warn(NULL, "notifications: replay read failed; resuming without it");
    }
    if (cl->replies_due == 0) {
        if (cl->conn)
            replay_finish(cl);
        else
            ldg__notify_free_replay(cl);
        ldg__notify_client_maybe_free(cl);
    }
    (void)ldg__notify_op_end(h); /* last: the client (freed above at the latest) needed the hub */
}

/* Read every project's replay stream (one XRANGE each, pipelined per shard). */
static void replay_read(struct client *cl)
{
    struct hub *h = cl->hub;
    uint64_t floor_ms = ldg_wall_ms() - (uint64_t)G.cfg->replay_window_ms;
    struct ldg_event_id from = cl->resume_from;
    char start[LDG_EVENT_ID_MAX + 2], count[24];
    if (from.ms < floor_ms) {
        /* Older than the window: replay the whole window (inclusive start). */
        struct ldg_event_id floor_id = {floor_ms, 0};
        ldg_event_id_format(&floor_id, start);
    } else {
        start[0] = '(';
        ldg_event_id_format(&from, start + 1);
    }
    snprintf(count, sizeof count, "%" PRId64, G.cfg->replay_events);
    cl->replies_due++; /* held while issuing */
    for (size_t i = 0; i < cl->nmembers; i++) {
        struct member *m = &cl->members[i];
        if (G.cfg->replay_events == 0)
            continue;
        char key[64];
        ldg__notify_channel(key, sizeof key, REPLAY_PREFIX, m->proj->id);
        const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
        struct xrange *x = ldg_malloc(sizeof *x);
        x->cl = cl;
        x->m = m;
        struct ldg_redis *r = ldg_worker_redis_for(h->w, m->proj->id); /* the replay stream's shard */
        if (r && ldg_redis_commandargv(r, on_xrange, x, 6, argv, NULL) == 0) {
            cl->replies_due++;
            h->ops++;
        } else
            free(x);
    }
    if (--cl->replies_due == 0)
        replay_finish(cl);
}

/* A subscription barrier of replay_start ended. Not ok: the pub/sub connection was lost first;
 * the read goes on, and the loop replays again once it is back (ldg__notify_resume_all). */
static void on_subscribed(struct ldg_redis_sub *s, bool ok, void *ud)
{
    (void)s;
    (void)ok;
    struct client *cl = ud;
    struct hub *h = cl->hub;
    cl->replies_due--;
    if (--cl->barriers_due == 0) {
        if (cl->conn) {
            replay_read(cl);
        } else {
            ldg__notify_free_replay(cl);
            ldg__notify_client_maybe_free(cl);
        }
    }
    (void)ldg__notify_op_end(h); /* last: the client (freed above at the latest) needed the hub */
}

/* Replay from cl->resume_from. The read must come after the projects' channels are subscribed:
 * a notification is added to its replay stream and published in one step, so one published
 * between a read that ran first and a subscription that took effect later would reach the stream
 * neither way. So the read waits until the SUBSCRIBEs sent so far on the projects' pub/sub
 * connections are confirmed; meanwhile live notifications are held as during the read. */
void ldg__notify_replay_start(struct client *cl)
{
    struct hub *h = cl->hub;
    cl->state = CL_REPLAYING;
    cl->barriers_due = 0;
    for (size_t i = 0; i < cl->nmembers; i++) {
        cl->members[i].last = cl->resume_from; /* nothing at or before the client's id goes out again */
        struct ldg_redis_sub *sub = ldg__notify_sub_for(h, cl->members[i].proj->id);
        bool seen = false; /* one barrier per pub/sub connection */
        for (size_t j = 0; j < i && !seen; j++)
            seen = ldg__notify_sub_for(h, cl->members[j].proj->id) == sub;
        if (!sub || seen || G.cfg->replay_events == 0)
            continue;
        if (ldg_redis_sub_barrier(sub, on_subscribed, cl) == 0) {
            cl->barriers_due++;
            cl->replies_due++;
            h->ops++;
        }
    }
    if (cl->barriers_due == 0)
        replay_read(cl);
}

/* The pub/sub connection is back after being lost at lost_ms: every live stream replays from its
 * newest id (everything up to it reached the loop, in order, before the loss), or from a little
 * before the loss when that is later. */
void ldg__notify_resume_all(struct hub *h, uint64_t lost_ms)
{
    struct ldg_event_id floor_id = {lost_ms > 2000 ? lost_ms - 2000 : 0, 0};
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&h->accounts[b], it, tmp)
        {
            struct acct *a = ldg_container_of(it, struct acct, node);
            struct ldg_list_node *ci, *ctmp;
            ldg_list_foreach_safe(&a->clients, ci, ctmp)
            {
                struct client *cl = ldg_container_of(ci, struct client, acct_node);
                if (!cl->conn || cl->state != CL_LIVE || !cl->nmembers)
                    continue;
                struct ldg_event_id from = floor_id;
                for (size_t i = 0; i < cl->nmembers; i++)
                    if (ldg_event_id_cmp(&cl->members[i].last, &from) > 0)
                        from = cl->members[i].last;
                cl->resume_from = from;
                ldg__notify_replay_start(cl);
            }
        }
    }
}
