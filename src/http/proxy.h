/*
 * proxy.h: the client's address behind trusted reverse proxies. Pure: no loop, no sockets.
 *
 * `[server] trusted_proxies` lists addresses and CIDR blocks ("10.0.0.0/8, 127.0.0.1, ::1/128").
 * When the TCP peer is one of them, the client is read from `Forwarded` (RFC 7239 `for=`), else
 * from `X-Forwarded-For`: the entries are walked right to left (the nearest proxy appends last),
 * trusted ones are skipped, and the first untrusted address is the client. A header that cannot
 * be read stops the walk at the last good hop. An untrusted peer's headers are ignored: anyone
 * can send them.
 *
 * Threading: any thread (no state).
 */
#ifndef LDG_HTTP_PROXY_H
#define LDG_HTTP_PROXY_H

#include "core/common.h"
#include "core/str.h"

#define LDG_ADDR_MAX 64 /* text of an IPv4 or IPv6 address, NUL included */

/* Whether `list` (comma-separated addresses and CIDRs) is well-formed; the first bad entry is
 * copied to bad (cap bytes) when not. An empty list is valid. */
bool ldg_proxy_list_valid(const char *list, char *bad, size_t cap);

/* Whether the address text `addr` (IPv4, IPv6, or IPv4-mapped IPv6) is in `list`. */
bool ldg_proxy_trusted(const char *list, const char *addr, size_t n);

/* The client address into out (cap >= LDG_ADDR_MAX), normalised (IPv4-mapped IPv6 as IPv4).
 * `peer` is the TCP peer's address text; `fwd` and `xff` the headers (empty slices when absent). */
void ldg_proxy_client(const char *list, const char *peer, struct ldg_str fwd, struct ldg_str xff, char *out,
                      size_t cap);

#endif
