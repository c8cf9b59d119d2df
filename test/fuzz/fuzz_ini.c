/*
 * fuzz_ini.c: the INI loader and every key table (server, log, roles, redis, both PostgreSQL
 * sections and each role's section): parse, validate, dump, free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 14)
        return 0;
    ldg_log_min_level = (enum ldg_log_level)(LDG_LOG_ERROR + 1);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    struct ldg_config c;
    struct ldg_cfg_err err = {{0}};
    if (ldg_settings_load_string(&c, text, &err) == 0) {
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            ldg_settings_dump(&c, f);
            fclose(f);
        }
    } else if (!memchr(err.msg, 0, sizeof err.msg)) {
        abort();
    }
    ldg_settings_free(&c); /* after a failure too, as ledgerd's main does */
    free(text);
    return 0;
}
