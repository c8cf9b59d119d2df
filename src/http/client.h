/*
 * client.h: a small outgoing HTTP/1.1 client on a worker's loop, for webhooks and uptime checks.
 *
 * One request per connection ("Connection: close"), http:// or https://. Name resolution runs on
 * libuv's thread pool (uv_getaddrinfo); connect, TLS handshake, write and read on the loop (OpenSSL
 * over memory BIOs). Only the status line of the answer is read; the rest is dropped. Every request
 * has a deadline covering resolution, connect, handshake, write and the status line.
 *
 * https:// verifies the server: its chain against the system CA store plus an optional CA file
 * (ldg_httpc_set_ca_file), and its name (or IP address) against the URL's host; SNI is sent for
 * names. A failed verification ends the request with -EPROTO and a "TLS certificate verification
 * failed: <reason>" error. There is no switch to turn verification off.
 *
 * Bounds: a client runs at most max_inflight requests at once; up to max_queued more wait in
 * order; beyond that ldg_httpc_send refuses with -EAGAIN.
 *
 * Threading: a client belongs to one loop; every call and callback is on that loop's thread.
 */
#ifndef LDG_HTTP_CLIENT_H
#define LDG_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/common.h"

struct ldg_httpc;

struct ldg_httpc_req {
    const char *method;         /* "GET", "POST" */
    const char *url;            /* http[s]://host[:port][/path] */
    const char *const *headers; /* "Name: value" lines, without CRLF; nullable */
    size_t nheaders;
    const char *body; /* nullable */
    size_t body_len;
    int64_t timeout_ms; /* > 0 */
};

/* Result: status > 0 is the HTTP status; status < 0 a failure code (-ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EPROTO for a malformed answer or a TLS failure, -ECANCELED when the client
 * closed, ...) with `error` a short description, valid during the callback. latency_ms covers the whole
 * request. */
typedef void (*ldg_httpc_cb)(int status, int64_t latency_ms, const char *error, void *ud);

struct ldg_httpc *ldg_httpc_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_queued);

/* Trust the certificates of this PEM file too (in addition to the system store) for https://;
 * NULL or "" for the system store only. Copied. 0, or -errno when the file is not readable now (the
 * setting is kept: https:// requests then fail until it is). */
int ldg_httpc_set_ca_file(struct ldg_httpc *c, const char *path);

/* Start (or queue) a request; everything in r is copied. 0: cb runs exactly once, never from
 * inside this call. Without callback: -EINVAL (bad URL), -EPROTONOSUPPORT (not http[s]://),
 * -EAGAIN (queue full), -ECANCELED (closing). */
int ldg_httpc_send(struct ldg_httpc *c, const struct ldg_httpc_req *r, ldg_httpc_cb cb,
                   void *ud) LDG_MUSTCHECK;

/* Requests running or queued. */
size_t ldg_httpc_pending(const struct ldg_httpc *c);

/* Fail every request with -ECANCELED and free the client once its handles are closed; the
 * callbacks run from inside this call or shortly after. */
void ldg_httpc_close(struct ldg_httpc *c);

/* Split an http:// or https:// URL (default port 80 or 443). host/path point into buf (cap
 * bytes). 0, -EINVAL or -EPROTONOSUPPORT. */
int ldg_httpc_parse_url(const char *url, char *buf, size_t cap, const char **host, int *port,
                        const char **path);

#endif
