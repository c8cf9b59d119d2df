/*
 * hub.h: what the two kinds of streams of the notifications role share, internal to
 * roles/notify: notify.c (error notifications, GET /api/v1/notifications/stream) and tail.c (the
 * live tail, GET /api/v1/logs/tail).
 *
 * Each worker loop has one hub: one Redis pub/sub connection whose channels are subscribed while a
 * stream of the loop needs them, the per-account stream leases (one cap, max_streams_per_account,
 * counts both kinds), the heartbeat/ping tick, and the drain that ends every stream with a
 * `shutdown` event. A stream is a struct client on its account's list; a live tail's own state
 * hangs off client.tail.
 *
 * Threading: everything here runs on the hub's worker loop.
 */
#ifndef LDG_ROLES_NOTIFY_HUB_H
#define LDG_ROLES_NOTIFY_HUB_H

#include <uv.h>

#include "core/buf.h"
#include "core/list.h"
#include "notify/event.h"
#include "notify/prefs.h"
#include "roles/notify/notify.h"
#include "db/redis.h"
#include "auth/apikey.h"
#include "auth/jwt.h"

struct ldg_req;
struct ldg_conn;
struct ldg_chunk;
struct ldg__tail;
struct ldg__tail_hub;
struct ldg__tail_setup;

#define NBUCKETS 1024 /* per-loop hash buckets for projects and accounts */

struct ldg__notify_global {
    const struct ldg_notify_cfg *cfg; /* NULL until init_global (role enabled) */
    struct ldg_redis_script lease;
    char instance[17]; /* random per process: lease members are "<instance>:<worker>:<seq>" */
    int index;
};
extern struct ldg__notify_global ldg__notify;

struct hub;
struct client;

struct proj {
    struct ldg_list_node node; /* on hub->projects[bucket] */
    int64_t id;
    struct ldg_list members; /* of struct member; the channel is subscribed while non-empty */
};

struct acct {
    struct ldg_list_node node; /* on hub->accounts[bucket] */
    int64_t id;
    struct ldg_list clients; /* of client.acct_node */
    struct ldg_list waiters; /* of setup.wnode: API-key streams waiting for the first read */
    unsigned leasing;        /* setups between the read and their lease reply */
    struct ldg_prefs prefs;
    bool loaded;                    /* prefs read at least once */
    struct ldg_list_node load_node; /* on hub->load_queue while its first read waits */
    bool reloading, reload_again;
    uint64_t memo_seq; /* message the memo is for */
    bool memo_ok;
};

struct member {
    struct ldg_list_node node; /* on proj->members */
    struct client *cl;
    struct proj *proj;
    struct ldg_event_id last; /* last id sent to this stream for this project */
};

enum client_state { CL_REPLAYING, CL_LIVE };

/* A live event held while the stream's resume replays. */
struct pend {
    struct ldg_list_node node;
    struct member *m;
    struct ldg_event_id id;
    struct ldg_chunk *ch; /* owned reference */
    bool ok;              /* the preferences' verdict when it arrived */
};

/* A replayed event, until every XRANGE of the resume has answered. */
struct rep {
    struct ldg_event_id id;
    struct member *m;
    char *json; /* owned */
    size_t len;
    char idtext[LDG_EVENT_ID_MAX + 1];
};

struct client {
    struct hub *hub;
    struct ldg_conn *conn; /* borrowed; NULL once its close callback ran */
    struct acct *acct;
    struct ldg_list_node acct_node, hb_node, ping_node;
    uint64_t hb_due, ping_due; /* loop ms */
    uint64_t seq;
    enum client_state state;
    struct ldg_list pending; /* of struct pend (CL_REPLAYING only) */
    unsigned replies_due;    /* XRANGE replies and subscription barriers still to come */
    unsigned barriers_due;   /* subscription barriers still to come (resume.c) */
    struct rep *reps;        /* owned */
    size_t rep_bytes;        /* held by reps (bounded by replay_max_bytes) */
    bool rep_truncated;
    size_t nreps, reps_cap;
    struct ldg_event_id resume_from;
    struct ldg__tail *tail; /* owned: a live tail (tail.c), NULL for a notification stream */
    /* The credentials the stream was opened with: it ends when they do. */
    char sid[LDG_JWT_ID_MAX + 1];            /* session; "" for an API key */
    char key_digest[LDG_SHA256_HEX_LEN + 1]; /* API key; "" for a session */
    uint64_t expires_wall_ms;                /* access token's expiry; 0 = none */
    unsigned checks_due;                     /* credential re-checks in flight (keep cl alive) */
    size_t nmembers;
    struct member members[];
};

struct hub {
    struct ldg_worker *w;
    struct ldg_redis_sub *sub; /* NULL once closing: Redis shard 0 (global channels, its projects') */
    bool sub_closed;
    /* The channels of projects on the other Redis shards (NULL once closing), and how many of
     * them are not closed yet. SSE gateways thus subscribe on every shard they have viewers for. */
    struct ldg_redis_sub *shard_sub[LDG_SHARDS_MAX];
    unsigned shard_subs_open;
    uint64_t sub_errors_seen;
    uint64_t sub_lost_ms;       /* wall ms when the pub/sub connection was seen lost; 0 = not lost */
    uv_timer_t tick;            /* heartbeats and pings */
    uv_timer_t renew;           /* lease renewal */
    uv_timer_t loader;          /* first reads of preferences, batched (see load_later) */
    struct ldg_list load_queue; /* of acct.load_node */
    unsigned timers_open;
    struct ldg_list projects[NBUCKETS];
    struct ldg_list accounts[NBUCKETS];
    struct ldg_list hb_list, ping_list; /* clients, ordered by due time */
    size_t nclients;
    uint64_t next_seq;
    uint64_t msg_seq;
    bool draining;
    bool dead;    /* free_worker ran: freed when the last operation below ends */
    unsigned ops; /* PostgreSQL and Redis operations in flight whose callbacks use the hub */
    struct ldg_buf scratch;
    struct ldg__tail_hub *tails; /* owned: the loop's live tails (tail.c) */
    uint64_t next_expiry_ms;     /* wall ms of the earliest stream credential expiry; 0 = none */
};

/* A stream being set up: from the handler to the lease's answer (request arena). */
struct setup {
    struct ldg_req *req;
    struct hub *hub;
    int64_t account_id;
    int64_t *projects; /* arena */
    size_t nprojects;
    char *prefs;                /* arena, NUL-terminated; NULL = defaults */
    bool have_prefs;            /* prefs was read (else the account was on the loop when the stream began) */
    bool leasing;               /* counted in its account's `leasing` */
    struct ldg_list_node wnode; /* on acct->waiters */
    bool resume;
    struct ldg_event_id last_id;
    uint64_t seq;
    bool retried;
    struct ldg__tail_setup *tail; /* arena: a live tail's parameters (tail.c), NULL otherwise */
};

/* ---- notify.c, for tail.c ---------------------------------------------------------------------- */

struct hub *ldg__notify_hub(struct ldg_worker *w); /* NULL when the role is off */
size_t ldg__notify_bucket(int64_t id);
/* Every callback counted in h->ops calls this first; true when the hub is dead (release only). */
bool ldg__notify_op_end(struct hub *h);
struct acct *ldg__notify_acct_find(struct hub *h, int64_t id);
struct acct *ldg__notify_acct_new(struct hub *h, int64_t id);
void ldg__notify_acct_maybe_free(struct hub *h, struct acct *a);
/* One event in a new chunk (one reference for the caller). */
struct ldg_chunk *ldg__notify_event_chunk(struct hub *h, const char *id, size_t idlen, const char *name,
                                          const char *data, size_t n);
/* "<instance>:<worker>:<seq>": a stream's member in its account's lease set (and a tail's in its
 * project's viewer set). */
void ldg__notify_lease_member(char *out, size_t cap, unsigned worker, uint64_t seq);
void ldg__notify_lease_release(struct ldg_worker *w, int64_t account_id, uint64_t seq);
/* One pass renewing lease sets (account leases, tail viewers): per key, ZADD its members at score
 * now + stream_lease_ms, LDG__NOTIFY_RENEW_BATCH members a command, then PEXPIRE the key; fire and
 * forget, `what` starts the debug lines of what was not sent. The struct lives on the caller's stack;
 * _begin allocates the member buffer and _end frees it. Loop thread only. */
#define LDG__NOTIFY_RENEW_BATCH 256
struct ldg__notify_renewal {
    struct hub *h;
    struct ldg_redis *redis; /* of the current key: shard 0 (ldg__notify_renewal_key) or the project's */
    const char *what;
    char exp[24], ttl[24];
    const char *argv[2 + 2 * LDG__NOTIFY_RENEW_BATCH];
    char (*members)[48];
    int argc;
};
/* The pub/sub connection holding a project's channels (NULL once closing). */
struct ldg_redis_sub *ldg__notify_sub_for(struct hub *h, int64_t project_id);

void ldg__notify_renewal_begin(struct ldg__notify_renewal *r, struct hub *h, const char *what);
/* Start the members of key (kept by the caller until ldg__notify_renewal_expire): a global key
 * (Redis shard 0), or with _project one of that project (on its shard). */
void ldg__notify_renewal_key(struct ldg__notify_renewal *r, const char *key);
void ldg__notify_renewal_key_project(struct ldg__notify_renewal *r, const char *key, int64_t project_id);
/* Member of stream seq; last = the key's last member (sends the pending ZADD). */
void ldg__notify_renewal_add(struct ldg__notify_renewal *r, uint64_t seq, bool last);
void ldg__notify_renewal_expire(struct ldg__notify_renewal *r);
void ldg__notify_renewal_end(struct ldg__notify_renewal *r);
/* Take a slot of st->account_id's stream cap (st->req holds a reference; h->ops counted). The
 * answer starts the stream (notification or tail), or answers 429/503. */
int ldg__notify_send_lease(struct setup *st, bool eval) LDG_MUSTCHECK;
void ldg__notify_503(struct ldg_req *req, const char *detail);
/* Drop a client's channels, account and lease; free it unless replies are due. */
void ldg__notify_client_unlink(struct client *cl);
void ldg__notify_client_maybe_free(struct client *cl);
/* The close callback of every stream's connection (ud = the client). */
void ldg__notify_on_stream_closed(struct ldg_conn *c, void *ud);
/* Remember the credentials of the request that opens cl's stream (expiry, session, key). */
void ldg__notify_client_creds(struct client *cl, const struct ldg_req *req);

/* ---- tail.c, for notify.c ---------------------------------------------------------------------- */

void ldg__tail_hub_init(struct hub *h);
void ldg__tail_hub_free(struct hub *h);
/* GET /api/v1/logs/tail. */
void ldg__tail_handler(struct ldg_req *req);
/* The lease of a tail setup was granted: start the stream. */
void ldg__tail_start(struct setup *st);
/* A message on a tail channel. */
void ldg__tail_message(struct hub *h, int64_t project_id, const char *msg, size_t n);
/* A tail client is being unlinked (its stream closed). */
void ldg__tail_unlink(struct client *cl);
/* Lease renewal of the viewer sets (every stream_lease_ms / 3). */
void ldg__tail_renew(struct hub *h);
/* The hub's tick: `dropped` reports due. */
void ldg__tail_tick(struct hub *h, uint64_t now);
/* Live tails open on the loop (health). */
size_t ldg__tail_count(const struct hub *h);
/* Drain: report what is still counted as dropped, before the `shutdown` event, and leave the
 * project's viewer set. */
void ldg__tail_flush(struct client *cl);

/* notify.c and resume.c (loop thread). A stream's resume: start its replay read; after a lost
 * pub/sub connection, replay for every open stream what was published in the last lost_ms. */
void ldg__notify_replay_start(struct client *cl);
void ldg__notify_resume_all(struct hub *h, uint64_t lost_ms);
/* Write ch to member m (ok = its preferences allow it), remember its id. */
void ldg__notify_deliver(struct member *m, const struct ldg_event_id *id, struct ldg_chunk *ch, bool ok);
void ldg__notify_free_replay(struct client *cl);
/* A string member of a JSON object as a slice into it; false if absent or not a string. */
bool ldg__notify_json_string_member(const cJSON *root, const char *name, struct ldg_str *out);

#endif
