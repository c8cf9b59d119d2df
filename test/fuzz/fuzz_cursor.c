/*
 * fuzz_cursor.c: cursors and the other small decoders of untrusted request text: error-group
 * cursors (decode; what decodes re-encodes to the same value), and the client address behind
 * trusted proxies (Forwarded / X-Forwarded-For, split from the input at the first newline).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "http/proxy.h"
#include "query/gcursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct ldg_gcursor c, c2;
    if (ldg_gcursor_decode(s, size, &c)) {
        char text[LDG_GCURSOR_MAX + 1];
        size_t n = ldg_gcursor_encode(&c, text);
        if (n > LDG_GCURSOR_MAX || !ldg_gcursor_decode(text, n, &c2) || c2.key != c.key || c2.id != c.id ||
            c2.sort != c.sort)
            abort();
    }
    unsigned char raw[128];
    size_t rn;
    (void)ldg_base64url_decode(s, size, raw, sizeof raw, &rn);

    const char *nl = memchr(s, '\n', size);
    size_t an = nl ? (size_t)(nl - s) : size;
    char out[LDG_ADDR_MAX];
    struct ldg_str h = ldg_str_make(nl ? nl + 1 : s + size, nl ? size - an - 1 : 0);
    struct ldg_str none = ldg_str_make(NULL, 0);
    ldg_proxy_client("127.0.0.1, 10.0.0.0/8, fd00::/8", "127.0.0.1", h, none, out, sizeof out);
    ldg_proxy_client("127.0.0.1, 10.0.0.0/8, fd00::/8", "127.0.0.1", none, h, out, sizeof out);
    if (!memchr(out, 0, sizeof out))
        abort();
    char list[256];
    if (an < sizeof list) {
        memcpy(list, s, an);
        list[an] = 0;
        char bad[64];
        if (ldg_proxy_list_valid(list, bad, sizeof bad))
            (void)ldg_proxy_trusted(list, "10.1.2.3", 8);
    }
    return 0;
}
