#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "settings.h"

struct demo {
    bool flag;
    int64_t n;
    int64_t size;
    int mode;
    char *name;
    char *list;
};

static const struct ldg_cfg_enum modes[] = {{"fast", 1}, {"safe", 2}, {NULL, 0}};
static const struct ldg_cfg_key demo_keys[] = {
    {"flag", LDG_CFG_BOOL, offsetof(struct demo, flag), "off", 0, 0, NULL, 0, "a flag"},
    {"n", LDG_CFG_INT, offsetof(struct demo, n), "auto", 0, 10, NULL, 0, "a number"},
    {"size_bytes", LDG_CFG_SIZE, offsetof(struct demo, size), "1024", 1, 4096, NULL, 0, "a size"},
    {"mode", LDG_CFG_ENUM, offsetof(struct demo, mode), "safe", 0, 0, modes, 0, "a mode"},
    {"name", LDG_CFG_STR, offsetof(struct demo, name), "x", 0, 0, NULL, LDG_CFG_SECRET, "a secret"},
    {"list", LDG_CFG_LIST, offsetof(struct demo, list), "", 0, 0, NULL, LDG_CFG_MULTI, "a list"},
    {0},
};

static int load(struct demo *d, const char *text, struct ldg_cfg_err *err)
{
    struct ldg_cfg_section sec = {"demo", demo_keys, d, NULL};
    memset(d, 0, sizeof *d);
    int rc = ldg_cfg_defaults(&sec, 1, err);
    assert_int_equal(rc, 0);
    return ldg_cfg_load_string(&sec, 1, "test.ini", text, err);
}

static void release(struct demo *d)
{
    struct ldg_cfg_section sec = {"demo", demo_keys, d, NULL};
    ldg_cfg_free(&sec, 1);
}

static void test_defaults_and_values(void **state)
{
    struct demo d;
    struct ldg_cfg_err err;
    assert_int_equal(
        load(&d, "[demo]\nflag = on\nn = 7\nmode = FAST\nname = bob ; comment\nlist = a, b\nlist = c\n",
             &err),
        0);
    assert_true(d.flag);
    assert_int_equal(d.n, 7);
    assert_int_equal(d.size, 1024);
    assert_int_equal(d.mode, 1);
    assert_string_equal(d.name, "bob");
    assert_string_equal(d.list, "a, b,c");
    assert_true(ldg_cfg_list_has(d.list, "b", 1));
    assert_true(ldg_cfg_list_has(d.list, "c", 1));
    assert_false(ldg_cfg_list_has(d.list, "d", 1));
    release(&d);
    assert_int_equal(load(&d, "", &err), 0);
    assert_int_equal(d.n, 0); /* auto */
    release(&d);
}

static void test_errors_name_file_and_line(void **state)
{
    struct demo d;
    struct ldg_cfg_err err;
    assert_int_not_equal(load(&d, "[demo]\nflag = on\nbogus = 1\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:3: unknown key \"bogus\" in [demo]");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\n\nn = 1\nn = 2\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:4: duplicate key \"n\" in [demo]");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nn = 11\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:2: [demo] n: 11 is out of range [0, 10]");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nflag = maybe\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:2: [demo] flag: expected on|off, got \"maybe\"");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nmode = slow\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:2: [demo] mode: \"slow\" is not one of fast|safe");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nsize_bytes = 12k\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:2: [demo] size_bytes: expected size in bytes, got \"12k\"");
    release(&d);
    assert_int_not_equal(load(&d, "[other]\nx = 1\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:1: unknown section [other]");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nflag = on\n\n[demoo]\n", &err), 0); /* empty, misspelt */
    assert_string_equal(err.msg, "test.ini:4: unknown section [demoo]");
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nflag = on;\n", &err), 0);
    assert_non_null(strstr(err.msg, "test.ini:2: [demo] flag: ';' in the value"));
    release(&d);
    assert_int_not_equal(load(&d, "[demo]\nthis line has no equals sign\n", &err), 0);
    assert_string_equal(err.msg, "test.ini:2: syntax error (or line longer than 200 bytes)");
    release(&d);
}

static void test_dump_masks_secrets(void **state)
{
    struct demo d;
    struct ldg_cfg_err err;
    assert_int_equal(load(&d, "[demo]\nname = hunter2\n", &err), 0);
    struct ldg_cfg_section sec = {"demo", demo_keys, &d, NULL};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ldg_cfg_dump(&sec, 1, f);
    fclose(f);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "name = ********"));
    assert_non_null(strstr(text, "mode = safe"));
    assert_non_null(strstr(text, "n = auto"));
    free(text);
    release(&d);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Every key of every table must be documented in conf/ledger.ini, in its own section, and the
 * shipped files must parse. */
static void test_conf_files_cover_every_key(void **state)
{
    const char *root = getenv("LDG_SOURCE_ROOT");
    assert_non_null(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/conf/ledger.ini", root);
    char *text = read_file(path);
    struct ldg_config c;
    struct ldg_cfg_err err = {{0}};
    int rc = ldg_settings_load_string(&c, text, &err);
    if (rc)
        fail_msg("conf/ledger.ini: %s", err.msg);
    for (size_t s = 0; s < c.nsections; s++) {
        if (c.sections[s].present) /* optional, numbered sections ([redis.1]...): same keys as the base */
            continue;
        char hdr[128];
        snprintf(hdr, sizeof hdr, "\n[%s]\n", c.sections[s].name);
        const char *sec = strstr(text, hdr);
        if (!sec)
            fail_msg("conf/ledger.ini has no section [%s]", c.sections[s].name);
        const char *end = strstr(sec + 1, "\n[");
        for (const struct ldg_cfg_key *k = c.sections[s].keys; k->name; k++) {
            char pat[128];
            snprintf(pat, sizeof pat, "\n%s = ", k->name);
            const char *at = strstr(sec, pat);
            char pat2[128];
            snprintf(pat2, sizeof pat2, "\n;%s = ", k->name);
            const char *at2 = strstr(sec, pat2);
            bool ok = (at && (!end || at < end)) || (at2 && (!end || at2 < end));
            if (!ok)
                fail_msg("conf/ledger.ini: key %s missing from [%s]", k->name, c.sections[s].name);
        }
    }
    ldg_settings_free(&c);
    free(text);
    static const char *const others[] = {"conf/gateway.ini", "conf/worker.ini"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(others); i++) {
        snprintf(path, sizeof path, "%s/%s", root, others[i]);
        text = read_file(path);
        rc = ldg_settings_load_string(&c, text, &err);
        if (rc)
            fail_msg("%s: %s", others[i], err.msg);
        ldg_settings_free(&c);
        free(text);
    }
}

static void test_settings_errors(void **state)
{
    struct ldg_config c;
    struct ldg_cfg_err err = {{0}};
    assert_int_not_equal(ldg_settings_load_string(&c, "[server]\nport = 0\n", &err), 0);
    assert_non_null(strstr(err.msg, ":2: [server] port: 0 is out of range"));
    ldg_settings_free(&c);
    assert_int_not_equal(
        ldg_settings_load_string(&c, "[roles]\ngateway = on\nstorage = on\nstorage = off\n", &err), 0);
    assert_non_null(strstr(err.msg, ":4: duplicate key \"storage\""));
    ldg_settings_free(&c);
    assert_int_equal(
        ldg_settings_load_string(&c, "[server]\nworkers = auto\n[roles]\nanalytics = off\n", &err), 0);
    assert_true(ldg_settings_workers(&c) >= 1);
    assert_false(c.roles.enabled[ldg_role_index("analytics")]);
    assert_true(c.roles.enabled[ldg_role_index("gateway")]);
    ldg_settings_free(&c);
}

/* [redis.N]: the extra Redis shards, contiguous from 1, printed only when present; [node] name. */
static void test_redis_shards(void **state)
{
    struct ldg_config c;
    struct ldg_cfg_err err = {{0}};
    assert_int_equal(ldg_settings_load_string(&c, "[server]\nport = 8020\n", &err), 0);
    assert_int_equal(c.nredis, 1);
    assert_int_equal(ldg_settings_redis_shard(&c, 12345), 0);
    assert_true(c.node.name && *c.node.name); /* the host name */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ldg_settings_dump(&c, f);
    fclose(f);
    assert_null(strstr(out, "\n[redis.1]\n"));
    free(out);
    ldg_settings_free(&c);

    assert_int_equal(
        ldg_settings_load_string(&c,
                                 "[node]\nname = host-a\n[redis]\nport = 7000\nproject_shards = 5:2\n"
                                 "[redis.1]\nport = 7001\n[redis.2]\nhost = 10.0.0.3\n",
                                 &err),
        0);
    assert_int_equal(c.nredis, 3);
    assert_string_equal(c.node.name, "host-a");
    assert_int_equal(ldg_settings_redis_cfg(&c, 0)->port, 7000);
    assert_int_equal(ldg_settings_redis_cfg(&c, 1)->port, 7001);
    assert_int_equal(ldg_settings_redis_cfg(&c, 2)->port, 6379);
    assert_string_equal(ldg_settings_redis_cfg(&c, 2)->host, "10.0.0.3");
    assert_int_equal(ldg_settings_redis_shard(&c, 5), 2);
    assert_int_equal(ldg_settings_redis_shard(&c, 4), (unsigned)ldg_shardmap_jump(4, 3));
    f = open_memstream(&out, &len);
    ldg_settings_dump(&c, f);
    fclose(f);
    assert_non_null(strstr(out, "\n[redis.1]\n"));
    assert_non_null(strstr(out, "\n[redis.2]\n"));
    assert_null(strstr(out, "\n[redis.3]\n"));
    assert_non_null(strstr(out, "\nname = host-a\n"));
    /* what --print-config prints parses again to the same shards */
    struct ldg_config again;
    assert_int_equal(ldg_settings_load_string(&again, out, &err), 0);
    assert_int_equal(again.nredis, 3);
    assert_int_equal(ldg_settings_redis_shard(&again, 5), 2);
    assert_string_equal(ldg_settings_redis_cfg(&again, 2)->host, "10.0.0.3");
    ldg_settings_free(&again);
    free(out);
    ldg_settings_free(&c);

    assert_int_not_equal(ldg_settings_load_string(&c, "[redis.2]\nport = 7002\n", &err), 0);
    assert_non_null(strstr(err.msg, "[redis.2] without [redis.1]"));
    ldg_settings_free(&c);
    assert_int_not_equal(ldg_settings_load_string(&c, "[redis.1]\nproject_shards = 1:0\n", &err), 0);
    assert_non_null(strstr(err.msg, "[redis.1] project_shards: set it in [redis] only"));
    ldg_settings_free(&c);
    assert_int_not_equal(ldg_settings_load_string(&c, "[redis]\nproject_shards = 1:1\n", &err), 0);
    assert_non_null(strstr(err.msg, "there are 1 shards"));
    ldg_settings_free(&c);
    assert_int_not_equal(ldg_settings_load_string(&c, "[redis.1]\nport = 1\nbogus = 2\n", &err), 0);
    assert_non_null(strstr(err.msg, ":3: unknown key \"bogus\" in [redis.1]"));
    ldg_settings_free(&c);
    assert_int_not_equal(ldg_settings_load_string(&c, "[redis.16]\nport = 1\n", &err), 0);
    assert_non_null(strstr(err.msg, ":1: unknown section [redis.16]"));
    ldg_settings_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_dump_masks_secrets),  cmocka_unit_test(test_conf_files_cover_every_key),
        cmocka_unit_test(test_settings_errors),     cmocka_unit_test(test_redis_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
