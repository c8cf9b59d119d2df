/*
 * parse.h: llhttp glue. Feeds bytes, builds a struct ldg_req (head into its arena, body into its
 * buffer), enforces header and body limits, and stops after each complete message so responses
 * go out in order (pipelining). Pure: no loop, no sockets; unit-tested over byte strings.
 *
 * Threading: one parser per connection, used by that connection's worker thread only.
 */
#ifndef LDG_PARSE_H
#define LDG_PARSE_H

#include <llhttp.h>

#include "core/buf.h"
#include "http/request.h"

struct ldg_parser;

/* Called once the head is complete (before any body byte). Decide the body limit in
 * req->body_limit; return 0 to go on or an HTTP status (413, 417...) to reject the request,
 * which ends parsing for this connection. */
typedef int (*ldg_parser_head_cb)(struct ldg_parser *p, struct ldg_req *req);

struct ldg_parser_limits {
    size_t max_header_bytes; /* request line + headers */
    size_t max_headers;
};

struct ldg_parser {
    llhttp_t ll;
    struct ldg_req *req;  /* borrowed: the request being filled; set by ldg_parser_begin */
    struct ldg_buf tok;   /* owned: the URL / header token being accumulated across reads */
    struct ldg_str field; /* current header name (in req arena) */
    size_t head_bytes;
    bool in_head;       /* between message begin and headers complete */
    bool done;          /* message complete; paused */
    bool started;       /* at least one byte of this message seen */
    bool defer_body;    /* set by on_head: stop after the head (LDG_PARSE_HEAD) until resumed */
    bool head_paused;   /* stopped after the head; ldg_parser_resume goes on with the body */
    int status;         /* on error: the HTTP status to answer (400, 413, 431...) */
    const char *detail; /* on error: client-facing message (static, or detail_buf) */
    char detail_buf[80];
    struct ldg_parser_limits limits;
    ldg_parser_head_cb on_head;
    void *ud; /* borrowed: the owner (connection) */
};

enum ldg_parse_result {
    LDG_PARSE_MORE,  /* all bytes consumed, message not complete */
    LDG_PARSE_DONE,  /* one message complete; *consumed tells how far */
    LDG_PARSE_ERROR, /* p->status / p->detail say what to answer; close afterwards */
    LDG_PARSE_HEAD,  /* on_head asked to stop after the head (defer_body): nothing of the body
                      * was consumed; *consumed tells how far; ldg_parser_resume, then feed the rest */
};

void ldg_parser_init(struct ldg_parser *p, const struct ldg_parser_limits *limits, ldg_parser_head_cb on_head,
                     void *ud);
/* Attach the next request to fill. */
void ldg_parser_begin(struct ldg_parser *p, struct ldg_req *req);
enum ldg_parse_result ldg_parser_feed(struct ldg_parser *p, const char *data, size_t len, size_t *consumed);
/* Go on with the body of a message stopped by LDG_PARSE_HEAD. */
void ldg_parser_resume(struct ldg_parser *p);
/* Release the token buffer (idle connections keep no buffers). */
void ldg_parser_shrink(struct ldg_parser *p);
void ldg_parser_free(struct ldg_parser *p);

#endif
