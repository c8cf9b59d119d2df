/*
 * fuzz_qlang.c: the query language. The first line is the query: parsed, compiled to SQL (the
 * placeholders must match the parameters) and built into an evaluator; the rest, when it is
 * JSON, is a log document the evaluator is run against.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "query/qeval.h"
#include "query/qlang.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *q = (const char *)data;
    const char *nl = memchr(q, '\n', size);
    size_t qn = nl ? (size_t)(nl - q) : size;
    if (memchr(q, 0, qn))
        return 0; /* the HTTP layer never hands a NUL over */
    static char mem[8192];
    struct ldg_arena a;
    ldg_arena_init(&a, mem, sizeof mem);
    struct ldg_qnode *root;
    struct ldg_qerror err;
    if (ldg_qlang_parse(q, qn, &a, &root, &err) == 0) {
        struct ldg_buf sql;
        ldg_buf_init(&sql);
        struct ldg_qparams params = {0};
        ldg_qlang_compile(root, &a, &sql, &params);
        /* Every $k placeholder refers to a parameter that exists. */
        const char *s = ldg_buf_head(&sql);
        for (size_t i = 0; i < ldg_buf_size(&sql); i++)
            if (s[i] == '$' && i + 1 < ldg_buf_size(&sql) && s[i + 1] >= '1' && s[i + 1] <= '9') {
                unsigned long k = strtoul(s + i + 1, NULL, 10);
                if (k == 0 || k > params.n)
                    abort();
            }
        ldg_buf_free(&sql);
        struct ldg_qeval *e;
        if (ldg_qeval_new(root, q, qn, &e, &err) == 0) {
            cJSON *doc = nl ? ldg_json_parse(nl + 1, size - qn - 1) : NULL;
            if (!doc)
                doc = ldg_json_parse("{\"message\":\"payment timeout\",\"level\":\"error\","
                                     "\"attributes\":{\"user\":{\"id\":7},\"tags\":[\"a\",\"b\"]}}",
                                     110);
            if (doc) {
                struct ldg_qdoc d;
                ldg_qdoc_init(&d, doc);
                (void)ldg_qeval_match(e, &d);
                ldg_qdoc_free(&d);
                cJSON_Delete(doc);
            }
            ldg_qeval_free(e);
        }
    } else if (!memchr(err.msg, 0, sizeof err.msg)) {
        abort();
    }
    ldg_arena_reset(&a);
    return 0;
}
