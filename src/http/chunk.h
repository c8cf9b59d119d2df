/*
 * chunk.h: a shared, immutable piece of a streamed response body (Server-Sent Events).
 *
 * One chunk is serialised once and written to every stream that wants it: each stream holds a
 * reference while the bytes are queued or in flight. The bytes are stored framed as an HTTP/1.1
 * chunk ("<hex size>\r\n<body>\r\n"); an HTTP/1.0 stream (no chunked encoding, body delimited by
 * the close) writes only the body part, [body_off, body_off + body_len).
 *
 * A raw chunk (ldg_chunk_raw) has no framing: both kinds of stream write all of it (the response
 * head, the terminating "0\r\n\r\n").
 *
 * Threading: the reference count is not atomic; a chunk belongs to one loop.
 */
#ifndef LDG_HTTP_CHUNK_H
#define LDG_HTTP_CHUNK_H

#include "core/common.h"

struct ldg_chunk {
    unsigned refs;
    uint32_t len;      /* framed bytes in data */
    uint32_t body_off; /* where the body starts (0 for a raw chunk) */
    uint32_t body_len;
    char data[]; /* owned */
};

/* A chunk framing body[0..n) (n > 0), one reference held by the caller. Never NULL (OOM aborts). */
struct ldg_chunk *ldg_chunk_new(const void *body, size_t n);
/* A chunk written as is by every stream. */
struct ldg_chunk *ldg_chunk_raw(const void *data, size_t n);

static inline struct ldg_chunk *ldg_chunk_ref(struct ldg_chunk *c)
{
    c->refs++;
    return c;
}

void ldg_chunk_unref(struct ldg_chunk *c);

/* The bytes a stream writes: all of them (chunked, or a raw chunk) or the body only. */
static inline const char *ldg_chunk_bytes(const struct ldg_chunk *c, bool chunked, size_t *len)
{
    if (chunked) {
        *len = c->len;
        return c->data;
    }
    *len = c->body_len;
    return c->data + c->body_off;
}

#endif
