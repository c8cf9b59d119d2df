/*
 * conn.h: one accepted TCP connection: read path, llhttp glue, keep-alive, pipelining (one
 * request in flight, later bytes buffered under a bound, responses in order), write path,
 * lingering close.
 *
 * A connection has exactly one handle (its uv_tcp_t) and so one close callback, where its memory
 * is released. Timeouts are not timers: the connection sits on its worker's list for its state
 * (`w->conns[state]`), appended on every state change, so each list is ordered by deadline and
 * the worker's sweeper only looks at list heads.
 *
 * Threading: the owning worker's thread only.
 */
#ifndef LDG_CONN_H
#define LDG_CONN_H

#include <uv.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/worker.h"
#include "http/parse.h"

struct ldg_conn {
    uv_tcp_t tcp;         /* first member: (struct ldg_conn *)handle */
    struct ldg_worker *w; /* borrowed: owning worker */
    enum ldg_conn_state state;
    struct ldg_list_node link; /* on w->conns[state] */
    uint64_t deadline_ms;      /* compared with uv_now() by the sweeper */
    uint64_t id;
    struct ldg_parser parser;
    struct ldg_buf in;   /* owned: bytes received but not parsed yet (pipelined requests) */
    struct ldg_req *req; /* owned reference: the current request, NULL between requests */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    bool writing;        /* wreq in flight: req buffers must stay alive */
    bool close_after;    /* close once the current response is written */
    bool handle_closing; /* uv_close called */
    bool read_stopped;
    char ctx[32]; /* "conn=<id>" for log lines */
};

/* Worker thread: the listener's connection callback. */
void ldg_conn_on_connection(uv_stream_t *server, int status);

/* Worker thread: expire deadlines (called by the worker's sweeper). */
void ldg_conn_sweep(struct ldg_worker *w, uint64_t now);

/* Worker thread: draining started; close idle connections, no more keep-alive. */
void ldg_conn_drain(struct ldg_worker *w);

/* Worker thread: close every connection now (drain deadline passed). */
void ldg_conn_close_all(struct ldg_worker *w);

/* Internal to http/: a response is ready in req->out. */
void ldg__conn_send_response(struct ldg_conn *c, struct ldg_req *req);

#endif
