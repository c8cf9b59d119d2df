/*
 * fuzz_logentry.c: log validation. JSON text -> cJSON -> ldg_logentry_parse (every field rule) ->
 * attributes text -> MessagePack (logcodec) -> decoded again: a validated log must survive the
 * queue's encoding unchanged in its key fields.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "ingest/logcodec.h"
#include "ingest/logentry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    cJSON *root = ldg_json_parse((const char *)data, size);
    if (!root)
        return 0;
    static char mem[4096];
    struct ldg_arena a;
    ldg_arena_init(&a, mem, sizeof mem);
    struct ldg_log l;
    char err[256];
    const cJSON *objs[2] = {root, NULL};
    if (cJSON_IsArray(root))
        objs[0] = cJSON_GetArrayItem(root, 0);
    if (objs[0] && ldg_logentry_parse(objs[0], 42, 1765100000000000LL, &a, &l, err, sizeof err) == 0) {
        ldg_logentry_attributes_text(&l, &a);
        struct ldg_buf b;
        ldg_buf_init(&b);
        if (ldg_logcodec_encode(&l, &b) == 0) {
            struct ldg_log back;
            if (ldg_logcodec_decode(ldg_buf_head(&b), ldg_buf_size(&b), &a, &back) != 0)
                abort(); /* what we encode we must be able to decode */
            if (back.ts_us != l.ts_us || back.project_id != l.project_id)
                abort();
            struct ldg_buf row;
            ldg_buf_init(&row);
            ldg_logcodec_copy_row(&back, &row);
            ldg_logcodec_notification(&back, &row);
            ldg_buf_free(&row);
        }
        ldg_buf_free(&b);
    } else if (objs[0]) {
        if (!memchr(err, 0, sizeof err))
            abort(); /* the message is always terminated */
    }
    ldg_arena_reset(&a);
    cJSON_Delete(root);
    return 0;
}
