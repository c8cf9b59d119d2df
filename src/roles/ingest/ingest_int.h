/*
 * ingest_int.h: what ingest.c shares with the OTLP handlers (otlp.c). Internal to the role.
 *
 * An OTLP request goes through the same enqueue as POST /api/v1/ingest/batch: the handler maps
 * its records to log objects, adds each with ldg__ingest_add_log (validation, MessagePack) and
 * starts the enqueue; the script's verdict comes back to ldg__otlp_respond (accepted, or quota as
 * a partial success) or is answered as an error (rate limit, backpressure) through the route's
 * error renderer. Worker thread only.
 */
#ifndef LDG_ROLES_INGEST_INT_H
#define LDG_ROLES_INGEST_INT_H

#include <cjson/cJSON.h>

#include "auth/principal.h"
#include "core/buf.h"
#include "core/list.h"
#include "http/request.h"
#include "http/router.h"
#include "roles/gateway/gateway.h"
#include "roles/ingest/ingest.h"

/* One request's accepted logs on their way to the queue; in req->arena. */
/* Longest Idempotency-Key header value accepted. */
#define IDEM_KEY_MAX 255

struct enqueue {
    struct ldg_list_node link; /* in iw.pending */
    struct ldg_req *req;
    int64_t project_id, quota, retention_days;
    bool batch;
    int otlp; /* 0: a v1 route; else 1 + enum ldg_otlp_encoding of the request */
    int otlp_signal;   /* OTLP: enum ldg_otlp_signal of the route */
    size_t otlp_items; /* OTLP: log records, spans or data points in the request */
    size_t accepted, rejected;
    struct ldg_buf errors; /* v1: JSON array items, already escaped and comma-joined; OTLP: the message */
    struct ldg_buf mp;     /* the accepted logs' MessagePack maps, back to back */
    struct ldg_buf notes;  /* notification JSON texts back to back */
    size_t *note_off;      /* arena: nnotes + 1 offsets into notes */
    size_t nnotes;
    int64_t day; /* UTC day number of the usage counter */
    char n_s[24];
    struct ldg_ratelimit rl;
    /* Set by OTLP handlers with more to do after the script (traces: store the spans). Called once
     * with ok = false when the request was answered (429, 503: nothing queued), else with ok =
     * true instead of the usual answer (the script queued e's logs, or refused them for the
     * quota: then accepted is 0 and errors holds the message); publish_notes follows. */
    void (*after)(struct enqueue *e, bool ok);
    void *after_ud;
    char idem[IDEM_KEY_MAX + 48]; /* "idem:<pid>:<Idempotency-Key>", or "" without the header */
    struct ldg_buf answer;        /* with a key: what a repeat gets ("<status>\n<type>\n<body>") */
};

/* The API-key principal, or NULL after answering 403. */
const struct ldg_principal *ldg__ingest_principal(struct ldg_req *req);
/* A new enqueue for up to max_logs logs (buffers owned by it until start or free). */
struct enqueue *ldg__ingest_enqueue_new(struct ldg_req *req, const struct ldg_principal *p, size_t max_logs);
/* Validate one log object and encode it into e: 0, or -EINVAL with the reason in err. */
int ldg__ingest_add_log(struct enqueue *e, const cJSON *obj, int64_t now_us, char *err, size_t errlen);
/* Queue e (e->accepted may be 0 when e->after is set: then only the limits are checked and
 * counted); takes over its buffers. */
void ldg__ingest_enqueue_start(struct enqueue *e);
void ldg__ingest_enqueue_free(struct enqueue *e);

/* otlp.c: the answer for an OTLP request whose logs were queued (or refused by the quota). */
void ldg__otlp_respond(struct enqueue *e);
/* otlp.c: POST /v1/logs (and the other OTLP routes). */
void ldg__otlp_routes(struct ldg_router *r, const struct ldg_ingest_cfg *c);

#endif
