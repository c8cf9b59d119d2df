/*
 * dispatch.c: delivering events to connectors (see dispatch.h).
 *
 * One `struct dispatch` per event: it reads the connectors, then runs one delivery per connector
 * and ends (done callback, free) when the last delivery ended. A webhook delivery waits for its
 * retries on its own timer. Log lines of deliveries go to connector_deliveries (fire and forget:
 * a failed insert is logged, never retried).
 */
#include "alerts/dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/apikey.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/list.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "http/client.h"
#include "roles/analytics/analytics.h"
#include "roles/notify/notify.h"
#include "roles/role.h"
#include "settings.h"

#define CTX "role=alerts"

struct dispatcher {
    struct ldg_worker *w;
    struct ldg_httpc *http;
    struct ldg_list waiting; /* webhook deliveries waiting for a retry */
    size_t live;             /* dispatches not ended */
    bool stopping;
};

static _Thread_local struct dispatcher *D;
/* Set by ldg_dispatch_stop; outlives D (freed once its dispatches end), so that a callback still
 * arriving after the stop (a monitor check listed just before it) does not start a new dispatcher
 * and outgoing client that nothing would close. */
static _Thread_local bool D_stopped;

struct dispatch {
    struct dispatcher *d;
    struct ldg_dispatch_event ev; /* strings owned */
    bool test;
    ldg_dispatch_done_cb done;
    void *ud;
    struct ldg_dispatch_result r;
    int pending;
    char *body; /* webhook document */
    size_t body_len;
    char ts[24];
};

struct delivery {
    struct ldg_list_node node;
    struct dispatch *ds;
    int64_t connector_id;
    char *url, *secret, *to;
    int attempt;
    uv_timer_t timer;
    bool timer_open, waiting;
    /* email */
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_getaddrinfo_t gai;
    bool tcp_open, gai_pending, done;
    int smtp_step;
    char **rcpt;
    int nrcpt, rcpt_i;
    struct ldg_buf in, out;
    uint64_t started;
};

static const struct ldg_analytics_cfg *cfg_of(struct ldg_worker *w)
{
    int i = ldg_role_index("analytics");
    return w->cfg->role_cfg[i];
}

static struct dispatcher *dispatcher(struct ldg_worker *w)
{
    if (!D) {
        D = ldg_calloc(1, sizeof *D);
        D->w = w;
        D->stopping = D_stopped; /* after the stop: no outgoing client, freed when its dispatches end */
        ldg_list_init(&D->waiting);
    }
    return D;
}

struct ldg_httpc *ldg_dispatch_http(struct ldg_worker *w)
{
    if (D_stopped)
        return NULL;
    struct dispatcher *d = dispatcher(w);
    if (!d->http && !d->stopping) {
        const struct ldg_analytics_cfg *c = cfg_of(w);
        d->http =
            ldg_httpc_new(&w->loop, (unsigned)c->outbound_max_inflight, (unsigned)c->outbound_max_queued);
        if (ldg_httpc_set_ca_file(d->http, c->outbound_ca_file) < 0)
            ldg_log_error(CTX, "alerts: outbound_ca_file %s is not readable: https:// requests will fail",
                          c->outbound_ca_file);
    }
    return d->http;
}

static char *dup_or_null(const char *s)
{
    return s ? ldg_strdup(s) : NULL;
}

static void dispatcher_maybe_free(struct dispatcher *d)
{
    if (d->stopping && d->live == 0 && ldg_list_empty(&d->waiting)) {
        if (D == d)
            D = NULL;
        free(d);
    }
}

static void dispatch_release(struct dispatch *ds)
{
    if (--ds->pending > 0)
        return;
    if (ds->done)
        ds->done(&ds->r, ds->ud);
    struct dispatcher *d = ds->d;
    free((char *)ds->ev.kind);
    free((char *)ds->ev.title);
    free((char *)ds->ev.data_json);
    free(ds->body);
    free(ds);
    d->live--;
    dispatcher_maybe_free(d);
}

static void note_error(struct dispatch *ds, const char *fmt, const char *a)
{
    snprintf(ds->r.last_error, sizeof ds->r.last_error, fmt, a ? a : "");
}

/* ---- delivery log ---------------------------------------------------------------------------- */

/* The dispatch is held until its log line is written, so `done` (a connector test's answer)
 * comes after every attempt is visible in the delivery log. */
static void on_logged(PGresult *res, void *ud)
{
    struct dispatch *ds = ud;
    if (!res) {
        const struct ldg_pg_error *e = ldg_pg_failure();
        ldg_log_warn(CTX, "connector delivery not logged: code=%d err=%s", e->code,
                     e->message ? e->message : "-");
    }
    dispatch_release(ds);
}

static void log_attempt(struct dispatch *ds, int64_t connector_id, int attempt, bool ok, int status,
                        const char *error, int64_t took_ms)
{
    char cid[24], att[16], st[16], ms[24];
    snprintf(cid, sizeof cid, "%" PRId64, connector_id);
    snprintf(att, sizeof att, "%d", attempt);
    snprintf(st, sizeof st, "%d", status);
    snprintf(ms, sizeof ms, "%" PRId64, took_ms);
    const char *params[] = {cid, ds->ev.kind, att, ok ? "t" : "f", status > 0 ? st : NULL, error, ms};
    ds->pending++;
    if (ldg_pgpool_query_prepared(
            ds->d->w->pg_auth, "alr_delivery_log",
            "INSERT INTO connector_deliveries (connector_id, event_kind, attempt, ok, "
            "status_code, error, duration_ms) VALUES ($1::bigint, $2, $3::int, $4::bool, "
            "$5::int, left($6, 500), $7::int)",
            7, params, on_logged, ds) < 0) {
        ldg_log_warn(CTX, "connector delivery not logged: database busy");
        ds->pending--;
    }
}

/* ---- in_app ---------------------------------------------------------------------------------- */

struct inapp {
    struct dispatch *ds;
};

static void on_inbox_row(PGresult *res, void *ud)
{
    struct dispatch *ds = ud;
    if (!res || PQntuples(res) != 1) {
        ds->r.failed++;
        note_error(ds, "%s", "inbox insert failed");
        if (!res) {
            const struct ldg_pg_error *e = ldg_pg_failure();
            ldg_log_warn(CTX, "inbox insert failed: code=%d err=%s", e->code, e->message ? e->message : "-");
        }
        dispatch_release(ds);
        return;
    }
    ds->r.delivered++;
    if (ds->ev.project_id > 0 && !ds->d->stopping) {
        const char *doc = PQgetvalue(res, 0, 0);
        ldg_notify_publish_event(ds->d->w, ds->ev.project_id, "notification", doc, strlen(doc));
    }
    dispatch_release(ds);
}

static void deliver_in_app(struct dispatch *ds)
{
    char acc[24], pid[24];
    snprintf(acc, sizeof acc, "%" PRId64, ds->ev.account_id);
    snprintf(pid, sizeof pid, "%" PRId64, ds->ev.project_id);
    const char *params[] = {acc, ds->ev.project_id > 0 ? pid : NULL, ds->ev.kind, ds->ev.title,
                            ds->ev.data_json ? ds->ev.data_json : "{}"};
    /* The row as the inbox lists it, to publish as is. */
    int rc = ldg_pgpool_query_prepared(
        ds->d->w->pg_auth, "alr_inbox_insert",
        "WITH n AS (INSERT INTO notifications (account_id, project_id, kind, title, data) VALUES "
        "($1::bigint, "
        "$2::bigint, $3, $4, $5::jsonb) RETURNING *) SELECT json_build_object('id', id, 'project_id', "
        "project_id, 'kind', kind, 'title', title, 'data', data, 'read', false, 'read_at', NULL, "
        "'created_at', "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))::text FROM n",
        5, params, on_inbox_row, ds);
    if (rc < 0) {
        ds->r.failed++;
        note_error(ds, "%s", "database busy");
        dispatch_release(ds);
    }
}

/* ---- webhook --------------------------------------------------------------------------------- */

static void delivery_free(struct delivery *dl)
{
    free(dl->url);
    free(dl->secret);
    free(dl->to);
    for (int i = 0; i < dl->nrcpt; i++)
        free(dl->rcpt[i]);
    free(dl->rcpt);
    ldg_buf_free(&dl->in);
    ldg_buf_free(&dl->out);
    free(dl);
}

static void on_delivery_timer_closed(uv_handle_t *h)
{
    struct delivery *dl = h->data;
    struct dispatch *ds = dl->ds;
    delivery_free(dl);
    dispatch_release(ds);
}

/* The delivery ended: release its dispatch (after its timer is closed, if it has one). */
static void delivery_end(struct delivery *dl)
{
    if (dl->timer_open) {
        dl->timer_open = false;
        uv_close((uv_handle_t *)&dl->timer, on_delivery_timer_closed);
        return;
    }
    struct dispatch *ds = dl->ds;
    delivery_free(dl);
    dispatch_release(ds);
}

static void webhook_attempt(struct delivery *dl);

static void on_retry_due(uv_timer_t *t)
{
    struct delivery *dl = t->data;
    dl->waiting = false;
    ldg_list_remove(&dl->ds->d->waiting, &dl->node);
    webhook_attempt(dl);
}

static void on_webhook_answer(int status, int64_t took, const char *error, void *ud)
{
    struct delivery *dl = ud;
    struct dispatch *ds = dl->ds;
    bool ok = status >= 200 && status < 300;
    char err[96];
    if (status < 0)
        snprintf(err, sizeof err, "%s", error ? error : "request failed");
    else if (!ok)
        snprintf(err, sizeof err, "HTTP %d", status);
    log_attempt(ds, dl->connector_id, dl->attempt, ok, status, ok ? NULL : err, took);
    if (status > 0)
        ds->r.last_status = status;
    if (ok) {
        ds->r.delivered++;
        delivery_end(dl);
        return;
    }
    bool retryable = status < 0 || status == 429 || status >= 500;
    const struct ldg_analytics_cfg *c = cfg_of(ds->d->w);
    if (!retryable || ds->test || ds->d->stopping || dl->attempt >= c->webhook_max_attempts) {
        ds->r.failed++;
        note_error(ds, "%s", err);
        delivery_end(dl);
        return;
    }
    int64_t wait = c->webhook_backoff_ms;
    for (int i = 1; i < dl->attempt && wait < 3600000; i++)
        wait *= 2;
    if (!dl->timer_open) {
        uv_timer_init(&ds->d->w->loop, &dl->timer);
        dl->timer.data = dl;
        dl->timer_open = true;
    }
    dl->waiting = true;
    ldg_list_push_back(&ds->d->waiting, &dl->node);
    uv_timer_start(&dl->timer, on_retry_due, (uint64_t)wait, 0);
}

static void webhook_attempt(struct delivery *dl)
{
    struct dispatch *ds = dl->ds;
    dl->attempt++;
    char sig[96] = "";
    if (dl->secret && *dl->secret) {
        struct ldg_buf m;
        ldg_buf_init(&m);
        ldg_buf_printf(&m, "%s.", ds->ts);
        ldg_buf_put(&m, ds->body, ds->body_len);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        HMAC(EVP_sha256(), dl->secret, (int)strlen(dl->secret), (const unsigned char *)ldg_buf_head(&m),
             ldg_buf_size(&m), md, &n);
        ldg_buf_free(&m);
        static const char hex[] = "0123456789abcdef";
        char *p = sig + sprintf(sig, "X-Ledger-Signature: sha256=");
        for (unsigned i = 0; i < n && i < 32; i++) {
            *p++ = hex[md[i] >> 4];
            *p++ = hex[md[i] & 15];
        }
        *p = 0;
    }
    char tsh[48], evh[64], idh[64];
    snprintf(tsh, sizeof tsh, "X-Ledger-Timestamp: %s", ds->ts);
    snprintf(evh, sizeof evh, "X-Ledger-Event: %.40s", ds->ev.kind);
    snprintf(idh, sizeof idh, "X-Ledger-Attempt: %d", dl->attempt);
    const char *headers[] = {"Content-Type: application/json", tsh, evh, idh, sig};
    struct ldg_httpc_req r = {
        .method = "POST",
        .url = dl->url,
        .headers = headers,
        .nheaders = sig[0] ? 5 : 4,
        .body = ds->body,
        .body_len = ds->body_len,
        .timeout_ms = cfg_of(ds->d->w)->webhook_timeout_ms,
    };
    struct ldg_httpc *http = ldg_dispatch_http(ds->d->w);
    int rc = http ? ldg_httpc_send(http, &r, on_webhook_answer, dl) : -ECANCELED;
    if (rc < 0) {
        const char *why = rc == -EAGAIN            ? "too many outgoing requests"
                          : rc == -EPROTONOSUPPORT ? "only http:// and https:// URLs are supported"
                          : rc == -ECANCELED       ? "shutting down"
                                                   : "invalid URL";
        log_attempt(ds, dl->connector_id, dl->attempt, false, 0, why, 0);
        ds->r.failed++;
        note_error(ds, "%s", why);
        delivery_end(dl);
    }
}

/* ---- email (plain SMTP through a relay) ---------------------------------------------------------- */

enum { SMTP_GREETING, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BODY, SMTP_QUIT };

static void smtp_end(struct delivery *dl, bool ok, const char *error);

static void on_smtp_closed(uv_handle_t *h)
{
    struct delivery *dl = h->data;
    if (!dl->gai_pending)
        delivery_end(dl);
}

static void smtp_end(struct delivery *dl, bool ok, const char *error)
{
    if (dl->done)
        return;
    dl->done = true;
    struct dispatch *ds = dl->ds;
    log_attempt(ds, dl->connector_id, 1, ok, 0, ok ? NULL : error,
                (int64_t)(uv_now(&ds->d->w->loop) - dl->started));
    if (ok) {
        ds->r.delivered++;
    } else {
        ds->r.failed++;
        note_error(ds, "%s", error);
    }
    if (dl->timer_open)
        uv_timer_stop(&dl->timer);
    if (dl->tcp_open) {
        dl->tcp_open = false;
        uv_close((uv_handle_t *)&dl->tcp, on_smtp_closed);
        return;
    }
    if (dl->gai_pending) {
        uv_cancel((uv_req_t *)&dl->gai);
        return; /* on_smtp_resolved ends it */
    }
    delivery_end(dl);
}

static void on_smtp_timeout(uv_timer_t *t)
{
    smtp_end(t->data, false, "SMTP relay timed out");
}

static void on_smtp_written(uv_write_t *w, int status)
{
    struct delivery *dl = w->data;
    if (status < 0 && status != UV_ECANCELED)
        smtp_end(dl, false, "SMTP write failed");
}

static void smtp_send(struct delivery *dl, const char *fmt, const char *a)
{
    ldg_buf_reset(&dl->out);
    ldg_buf_printf(&dl->out, fmt, a);
    uv_buf_t b = uv_buf_init((char *)ldg_buf_head(&dl->out), (unsigned)ldg_buf_size(&dl->out));
    dl->wr.data = dl;
    if (uv_write(&dl->wr, (uv_stream_t *)&dl->tcp, &b, 1, on_smtp_written) < 0)
        smtp_end(dl, false, "SMTP write failed");
}

/* Dot-stuffed plain-text message. */
static void smtp_message(struct delivery *dl)
{
    struct dispatch *ds = dl->ds;
    const struct ldg_analytics_cfg *c = cfg_of(ds->d->w);
    ldg_buf_reset(&dl->out);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    ldg_buf_printf(&dl->out, "From: %s\r\nTo: %s\r\nSubject: [Ledger] ", c->smtp_from, dl->to);
    for (const char *p = ds->ev.title; *p; p++)
        if (*p != '\r' && *p != '\n')
            ldg_buf_put(&dl->out, p, 1);
    ldg_buf_printf(&dl->out, "\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", date);
    ldg_buf_printf(&dl->out, "%s\r\n\r\nEvent: %s\r\n", ds->ev.title, ds->ev.kind);
    const char *line = ds->body;
    ldg_buf_puts(&dl->out, "\r\n");
    for (size_t i = 0; i < ds->body_len; i++) {
        if (line[i] == '\n')
            ldg_buf_puts(&dl->out, "\r");
        ldg_buf_put(&dl->out, line + i, 1);
    }
    ldg_buf_puts(&dl->out, "\r\n.\r\n");
    uv_buf_t b = uv_buf_init((char *)ldg_buf_head(&dl->out), (unsigned)ldg_buf_size(&dl->out));
    dl->wr.data = dl;
    if (uv_write(&dl->wr, (uv_stream_t *)&dl->tcp, &b, 1, on_smtp_written) < 0)
        smtp_end(dl, false, "SMTP write failed");
}

static void smtp_reply(struct delivery *dl, int code)
{
    const struct ldg_analytics_cfg *c = cfg_of(dl->ds->d->w);
    switch (dl->smtp_step) {
    case SMTP_GREETING:
        if (code != 220)
            break;
        dl->smtp_step = SMTP_EHLO;
        smtp_send(dl, "EHLO %s\r\n", "ledgerd");
        return;
    case SMTP_EHLO:
        if (code != 250)
            break;
        dl->smtp_step = SMTP_MAIL;
        smtp_send(dl, "MAIL FROM:<%s>\r\n", c->smtp_from);
        return;
    case SMTP_MAIL:
        if (code != 250)
            break;
        dl->smtp_step = SMTP_RCPT;
        smtp_send(dl, "RCPT TO:<%s>\r\n", dl->rcpt[dl->rcpt_i++]);
        return;
    case SMTP_RCPT:
        if (code != 250 && code != 251)
            break;
        if (dl->rcpt_i < dl->nrcpt) {
            smtp_send(dl, "RCPT TO:<%s>\r\n", dl->rcpt[dl->rcpt_i++]);
            return;
        }
        dl->smtp_step = SMTP_DATA;
        smtp_send(dl, "DATA\r\n%s", "");
        return;
    case SMTP_DATA:
        if (code != 354)
            break;
        dl->smtp_step = SMTP_BODY;
        smtp_message(dl);
        return;
    case SMTP_BODY:
        if (code != 250)
            break;
        dl->smtp_step = SMTP_QUIT;
        smtp_send(dl, "QUIT\r\n%s", "");
        smtp_end(dl, true, NULL);
        return;
    default:
        return;
    }
    char err[64];
    snprintf(err, sizeof err, "SMTP relay answered %d", code);
    smtp_end(dl, false, err);
}

static void on_smtp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct delivery *dl = h->data;
    char *p = ldg_buf_reserve(&dl->in, 1024, 64 * 1024);
    *buf = p ? uv_buf_init(p, 1024) : uv_buf_init(NULL, 0);
}

static void on_smtp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct delivery *dl = s->data;
    if (dl->done)
        return;
    if (nread < 0) {
        smtp_end(dl, false, "SMTP connection closed");
        return;
    }
    ldg_buf_commit(&dl->in, (size_t)nread);
    for (;;) {
        const char *head = ldg_buf_head(&dl->in);
        const char *eol = memchr(head, '\n', ldg_buf_size(&dl->in));
        if (!eol)
            break;
        size_t len = (size_t)(eol - head) + 1;
        bool last = len >= 4 && head[3] != '-';
        int code = len >= 3 ? atoi(head) : 0;
        ldg_buf_consume(&dl->in, len);
        if (last) {
            smtp_reply(dl, code);
            if (dl->done)
                return;
        }
    }
}

static void on_smtp_connected(uv_connect_t *cr, int status)
{
    struct delivery *dl = cr->data;
    if (dl->done)
        return;
    if (status < 0) {
        smtp_end(dl, false, "cannot connect to the SMTP relay");
        return;
    }
    if (uv_read_start((uv_stream_t *)&dl->tcp, on_smtp_alloc, on_smtp_read) < 0)
        smtp_end(dl, false, "SMTP read failed");
}

static void on_smtp_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct delivery *dl = g->data;
    dl->gai_pending = false;
    if (dl->done) {
        if (res)
            uv_freeaddrinfo(res);
        if (!dl->tcp_open)
            delivery_end(dl);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        smtp_end(dl, false, "cannot resolve the SMTP relay");
        return;
    }
    uv_tcp_init(&dl->ds->d->w->loop, &dl->tcp);
    dl->tcp.data = dl;
    dl->tcp_open = true;
    dl->conn.data = dl;
    int rc = uv_tcp_connect(&dl->conn, &dl->tcp, res->ai_addr, on_smtp_connected);
    uv_freeaddrinfo(res);
    if (rc < 0)
        smtp_end(dl, false, "cannot connect to the SMTP relay");
}

static void deliver_email(struct delivery *dl)
{
    struct dispatch *ds = dl->ds;
    const struct ldg_analytics_cfg *c = cfg_of(ds->d->w);
    dl->started = uv_now(&ds->d->w->loop);
    if (!c->smtp_host || !*c->smtp_host) {
        log_attempt(ds, dl->connector_id, 1, false, 0, "skipped: no SMTP relay configured", 0);
        ds->r.skipped++;
        note_error(ds, "%s", "no SMTP relay configured");
        delivery_end(dl);
        return;
    }
    /* recipients: comma-separated, each without CR/LF/<> (checked when the connector was saved) */
    char *list = ldg_strdup(dl->to ? dl->to : "");
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        dl->rcpt = ldg_realloc(dl->rcpt, (size_t)(dl->nrcpt + 1) * sizeof *dl->rcpt);
        dl->rcpt[dl->nrcpt++] = ldg_strdup(t);
    }
    free(list);
    if (!dl->nrcpt) {
        smtp_end(dl, false, "no recipients");
        return;
    }
    ldg_buf_init(&dl->in);
    ldg_buf_init(&dl->out);
    uv_timer_init(&ds->d->w->loop, &dl->timer);
    dl->timer.data = dl;
    dl->timer_open = true;
    uv_timer_start(&dl->timer, on_smtp_timeout, (uint64_t)c->smtp_timeout_ms, 0);
    char port[8];
    snprintf(port, sizeof port, "%d", (int)c->smtp_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    dl->gai.data = dl;
    if (uv_getaddrinfo(&ds->d->w->loop, &dl->gai, on_smtp_resolved, c->smtp_host, port, &hints) < 0) {
        smtp_end(dl, false, "cannot resolve the SMTP relay");
        return;
    }
    dl->gai_pending = true;
}

/* ---- the connectors ------------------------------------------------------------------------------ */

static void on_connectors(PGresult *res, void *ud)
{
    struct dispatch *ds = ud;
    if (!res) {
        const struct ldg_pg_error *e = ldg_pg_failure();
        ldg_log_warn(CTX, "event %s not delivered: connectors unreadable: code=%d err=%s", ds->ev.kind,
                     e->code, e->message ? e->message : "-");
        note_error(ds, "%s", "connectors unreadable");
        dispatch_release(ds);
        return;
    }
    int n = PQntuples(res);
    ds->r.connectors = n;
    for (int i = 0; i < n; i++) {
        const char *kind = PQgetvalue(res, i, 1);
        ds->pending++;
        if (strcmp(kind, "in_app") == 0) {
            deliver_in_app(ds);
            continue;
        }
        struct delivery *dl = ldg_calloc(1, sizeof *dl);
        dl->ds = ds;
        dl->connector_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        dl->url = PQgetisnull(res, i, 2) ? NULL : ldg_strdup(PQgetvalue(res, i, 2));
        dl->secret = PQgetisnull(res, i, 3) ? NULL : ldg_strdup(PQgetvalue(res, i, 3));
        dl->to = PQgetisnull(res, i, 4) ? NULL : ldg_strdup(PQgetvalue(res, i, 4));
        if (strcmp(kind, "webhook") == 0)
            webhook_attempt(dl);
        else
            deliver_email(dl);
    }
    dispatch_release(ds);
}

void ldg_dispatch_send(struct ldg_worker *w, const struct ldg_dispatch_event *ev, const char *ids, bool test,
                       ldg_dispatch_done_cb done, void *ud)
{
    struct dispatcher *d = dispatcher(w);
    struct dispatch *ds = ldg_calloc(1, sizeof *ds);
    ds->d = d;
    ds->ev = *ev;
    ds->ev.kind = ldg_strdup(ev->kind);
    ds->ev.title = ldg_strdup(ev->title ? ev->title : "");
    ds->ev.data_json = dup_or_null(ev->data_json);
    ds->test = test;
    ds->done = done;
    ds->ud = ud;
    ds->pending = 1; /* held until the connectors are read */
    d->live++;
    snprintf(ds->ts, sizeof ds->ts, "%lld", (long long)time(NULL));
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "event");
    ldg_json_str(&jw, ds->ev.kind);
    ldg_json_key(&jw, "title");
    ldg_json_str(&jw, ds->ev.title);
    ldg_json_key(&jw, "project_id");
    if (ev->project_id > 0)
        ldg_json_int(&jw, ev->project_id);
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "timestamp");
    ldg_json_int(&jw, strtoll(ds->ts, NULL, 10));
    ldg_json_key(&jw, "data");
    const char *data = ds->ev.data_json ? ds->ev.data_json : "{}";
    ldg_json_raw(&jw, data, strlen(data));
    ldg_json_obj_end(&jw);
    ds->body_len = ldg_buf_size(&b);
    ds->body = ldg_malloc(ds->body_len + 1);
    memcpy(ds->body, ldg_buf_head(&b), ds->body_len);
    ds->body[ds->body_len] = 0;
    ldg_buf_free(&b);
    if (d->stopping) {
        note_error(ds, "%s", "shutting down");
        dispatch_release(ds);
        return;
    }
    char acc[24];
    snprintf(acc, sizeof acc, "%" PRId64, ev->account_id);
    const char *params[] = {ids, acc, test ? "t" : "f"};
    if (ldg_pgpool_query_prepared(w->pg_auth, "alr_dispatch_connectors",
                                  "SELECT id, kind, url, secret, email_to FROM connectors WHERE id = ANY "
                                  "($1::bigint[]) AND account_id = $2::bigint AND (enabled OR $3::bool) "
                                  "ORDER BY id",
                                  3, params, on_connectors, ds) < 0) {
        note_error(ds, "%s", "database busy");
        dispatch_release(ds);
    }
}

static void on_owner_inbox(PGresult *res, void *ud)
{
    (void)ud;
    if (!res) {
        const struct ldg_pg_error *e = ldg_pg_failure();
        ldg_log_warn(CTX, "inbox insert failed: code=%d err=%s", e->code, e->message ? e->message : "-");
    }
}

void ldg_dispatch_inbox_owner(struct ldg_worker *w, int64_t project_id, const char *kind, const char *title,
                              const char *data_json)
{
    char pid[24];
    snprintf(pid, sizeof pid, "%" PRId64, project_id);
    const char *params[] = {pid, kind, title, data_json ? data_json : "{}"};
    if (ldg_pgpool_query_prepared(
            w->pg_auth, "alr_inbox_owner",
            "INSERT INTO notifications (account_id, project_id, kind, title, data) SELECT "
            "account_id, id, $2, $3, $4::jsonb FROM projects WHERE id = $1::bigint",
            4, params, on_owner_inbox, NULL) < 0)
        ldg_log_warn(CTX, "inbox insert of project=%s not submitted (database busy)", pid);
}

void ldg_dispatch_stop(struct ldg_worker *w)
{
    struct dispatcher *d = D;
    D_stopped = true;
    if (!d || d->stopping)
        return;
    d->stopping = true;
    while (!ldg_list_empty(&d->waiting)) {
        struct delivery *dl = ldg_container_of(ldg_list_pop_front(&d->waiting), struct delivery, node);
        dl->waiting = false;
        uv_timer_stop(&dl->timer);
        dl->ds->r.failed++;
        delivery_end(dl);
    }
    if (d->http) {
        struct ldg_httpc *h = d->http;
        d->http = NULL;
        ldg_httpc_close(h);
    }
    dispatcher_maybe_free(d);
}

bool ldg_dispatch_idle(const struct ldg_worker *w)
{
    (void)w;
    return !D || (D->live == 0 && ldg_list_empty(&D->waiting));
}
