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

struct ldg_req;
struct ldg_chunk;
struct ldg_conn_stream;

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
    bool auth_hold;        /* head read, the filter deciding: input is buffered, not parsed */
    const char *head_rest; /* borrowed during a filter call: body bytes read with the head */
    size_t head_rest_len;
    uint64_t body_start_ms; /* READ_BODY: when the body deadline started */
    struct ldg_conn_stream *stream; /* owned: streaming state (LDG_CONN_STREAM only), else NULL */
    char ctx[32];                   /* "conn=<id>" for log lines */
    bool otlp_only; /* accepted by the [gateway] otlp_listen listener: LDG_ROUTE_OTLP_LISTENER routes only */
};

/* Worker thread: the listener's connection callback. */
void ldg_conn_on_connection(uv_stream_t *server, int status);
/* Worker thread: the same for the OTLP listener (server->data = the worker): its connections see
 * only the routes flagged LDG_ROUTE_OTLP_LISTENER, any other path is 404. */
void ldg_conn_on_otlp_connection(uv_stream_t *server, int status);

/* Worker thread: expire deadlines (called by the worker's sweeper). */
void ldg_conn_sweep(struct ldg_worker *w, uint64_t now);

/* Worker thread: draining started; close idle connections, no more keep-alive. */
void ldg_conn_drain(struct ldg_worker *w);

/* Worker thread: close every connection now (drain deadline passed). */
void ldg_conn_close_all(struct ldg_worker *w);

/*
 * Streamed responses (Server-Sent Events). A handler turns its request's connection into a stream:
 * the head goes out at once (no Content-Length; chunked for HTTP/1.1, close-delimited for
 * HTTP/1.0), the request is released, and the connection leaves every deadline list (a stream has
 * no request, header or idle deadline). Chunks (http/chunk.h) are then written as they come: one
 * uv_try_write when nothing is queued, otherwise queued (a reference each) behind the write in
 * flight. The queue is bounded by `max_queued` bytes (what the kernel did not take): a chunk that
 * would pass it closes the connection, so a slow reader never grows memory.
 *
 * `on_closed(c, ud)` runs exactly once, from the connection's close callback (peer closed, write
 * error, queue bound, ldg_conn_stream_end finished, or the drain deadline): `c` must not be used
 * afterwards. Input from the client is read and discarded (EOF closes the stream).
 */
typedef void (*ldg_conn_stream_closed_cb)(struct ldg_conn *c, void *ud);

/* Worker thread: answer `req` (still unanswered, its connection alive) with 200 and a streaming head
 * (content_type, the headers added with ldg_req_add_header, CORS, X-Request-ID). The request is
 * released (its connection reference dropped); the caller's own reference, if any, is still its
 * to drop. Returns the connection, or NULL when req->conn is gone (nothing is sent). */
struct ldg_conn *ldg_conn_stream_begin(struct ldg_req *req, const char *content_type, size_t max_queued,
                                       ldg_conn_stream_closed_cb on_closed, void *ud);

/* Worker thread: write (or queue) one chunk; the stream takes its own reference. Returns 0, or
 * -ENOTCONN (closing or ending: nothing sent) or -ENOBUFS (the queue bound was passed: the
 * connection is closing, on_closed follows). */
int ldg_conn_stream_send(struct ldg_conn *c, struct ldg_chunk *ch);

/* Worker thread: send `last` (nullable) and the end of the body, then close gracefully once
 * everything queued is written (lingering close). Later sends answer -ENOTCONN. */
void ldg_conn_stream_end(struct ldg_conn *c, struct ldg_chunk *last);

/* Bytes queued on a stream (not yet taken by the kernel). */
size_t ldg_conn_stream_queued(const struct ldg_conn *c);

/* Internal to http/: the filter let a deferred request through: read its body, then run it. */
void ldg__conn_resume_body(struct ldg_conn *c, struct ldg_req *req);

/* Internal to http/: a response is ready in req->out. */
void ldg__conn_send_response(struct ldg_conn *c, struct ldg_req *req);

#endif
