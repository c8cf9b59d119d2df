#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "roles/gateway/webdir.h"
#include "unit.h"

static void test_accepts_gzip(void **state)
{
    assert_true(ldg_webdir_accepts_gzip(S("gzip")));
    assert_true(ldg_webdir_accepts_gzip(S("gzip, deflate, br")));
    assert_true(ldg_webdir_accepts_gzip(S("br;q=1.0, GZIP;q=0.5")));
    assert_true(ldg_webdir_accepts_gzip(S("*")));
    assert_true(ldg_webdir_accepts_gzip(S("x-gzip")));
    assert_true(ldg_webdir_accepts_gzip(S("gzip;q=0.001")));
    assert_false(ldg_webdir_accepts_gzip(S("")));
    assert_false(ldg_webdir_accepts_gzip(ldg_str_make(NULL, 0)));
    assert_false(ldg_webdir_accepts_gzip(S("identity")));
    assert_false(ldg_webdir_accepts_gzip(S("br, deflate")));
    assert_false(ldg_webdir_accepts_gzip(S("gzip;q=0")));
    assert_false(ldg_webdir_accepts_gzip(S("gzip; q=0.000")));
    assert_false(ldg_webdir_accepts_gzip(S("*, gzip;q=0")));
    assert_false(ldg_webdir_accepts_gzip(S("*;q=0")));
    assert_false(ldg_webdir_accepts_gzip(S("gzipped")));
}

static void test_etag_matches(void **state)
{
    const char *t = "\"0123456789abcdef\"";
    assert_true(ldg_webdir_etag_matches(S("\"0123456789abcdef\""), t));
    assert_true(ldg_webdir_etag_matches(S("\"x\", W/\"0123456789abcdef\""), t));
    assert_true(ldg_webdir_etag_matches(S("*"), t));
    assert_false(ldg_webdir_etag_matches(S("\"0123456789abcdef-gz\""), t));
    assert_false(ldg_webdir_etag_matches(S("0123456789abcdef"), t));
    assert_false(ldg_webdir_etag_matches(S(""), t));
}

static int clean(const char *path, char *out)
{
    return ldg_webdir_clean_path(S(path), out, 256);
}

static void test_clean_path(void **state)
{
    char out[256];
    assert_int_equal(clean("/", out), 0);
    assert_int_equal(clean("/index.html", out), 10);
    assert_string_equal(out, "index.html");
    assert_int_equal(clean("/assets/app%2Dx.js", out), 15);
    assert_string_equal(out, "assets/app-x.js");
    assert_int_equal(clean("/a..b/c.", out), 7); /* dots inside names are fine */
    assert_int_equal(clean("/../etc/passwd", out), -EINVAL);
    assert_int_equal(clean("/assets/../../x", out), -EINVAL);
    assert_int_equal(clean("/%2e%2e/x", out), -EINVAL);
    assert_int_equal(clean("/a/%2E%2E", out), -EINVAL);
    assert_int_equal(clean("/a/%2e%2e%2fb", out), -EINVAL); /* decoded slash splits the segment */
    assert_int_equal(clean("/./index.html", out), -EINVAL);
    assert_int_equal(clean("/index.html%00.js", out), -EINVAL);
    assert_int_equal(clean("/a%5c..%5cb", out), -EINVAL);
    assert_int_equal(clean("/a%0d%0ab", out), -EINVAL);
    assert_int_equal(clean("relative", out), -EINVAL);
}

static void test_api_paths(void **state)
{
    assert_true(ldg_webdir_is_api_path(S("/api")));
    assert_true(ldg_webdir_is_api_path(S("/api/v1/logs")));
    assert_true(ldg_webdir_is_api_path(S("/v1/x")));
    assert_true(ldg_webdir_is_api_path(S("/health")));
    assert_true(ldg_webdir_is_api_path(S("/health/deep")));
    assert_true(ldg_webdir_is_api_path(S("/healthz")));
    assert_true(ldg_webdir_is_api_path(S("/metrics")));
    assert_true(ldg_webdir_is_api_path(S("/_debug/sleep")));
    assert_false(ldg_webdir_is_api_path(S("/")));
    assert_false(ldg_webdir_is_api_path(S("/apis")));
    assert_false(ldg_webdir_is_api_path(S("/logs")));
    assert_false(ldg_webdir_is_api_path(S("/metricsboard")));
    assert_false(ldg_webdir_is_api_path(S("/assets/app.js")));
}

static void test_mime(void **state)
{
    assert_string_equal(ldg_webdir_mime("index.html"), "text/html; charset=utf-8");
    assert_string_equal(ldg_webdir_mime("assets/a.js"), "text/javascript; charset=utf-8");
    assert_string_equal(ldg_webdir_mime("a.mjs"), "text/javascript; charset=utf-8");
    assert_string_equal(ldg_webdir_mime("a.css"), "text/css; charset=utf-8");
    assert_string_equal(ldg_webdir_mime("a.svg"), "image/svg+xml");
    assert_string_equal(ldg_webdir_mime("a.PNG"), "image/png");
    assert_string_equal(ldg_webdir_mime("favicon.ico"), "image/x-icon");
    assert_string_equal(ldg_webdir_mime("a.json"), "application/json");
    assert_string_equal(ldg_webdir_mime("a.js.map"), "application/json");
    assert_string_equal(ldg_webdir_mime("f.woff2"), "font/woff2");
    assert_string_equal(ldg_webdir_mime("robots.txt"), "text/plain; charset=utf-8");
    assert_string_equal(ldg_webdir_mime("site.webmanifest"), "application/manifest+json");
    assert_string_equal(ldg_webdir_mime("dir.x/README"), "application/octet-stream");
}

static void put(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_load(void **state)
{
    char root[] = "/tmp/ldg-webdir-XXXXXX";
    assert_non_null(mkdtemp(root));
    char dist[600], outside[600], path[700], target[700];
    snprintf(dist, sizeof dist, "%s/dist", root);
    snprintf(outside, sizeof outside, "%s/secret.txt", root);
    assert_int_equal(mkdir(dist, 0755), 0);
    snprintf(path, sizeof path, "%s/assets", dist);
    assert_int_equal(mkdir(path, 0755), 0);

    struct ldg_webdir d;
    char why[256];
    memset(&d, 0, sizeof d);
    assert_int_equal(ldg_webdir_load(&d, "/nonexistent/ldg/dist", why, sizeof why), -ENOENT);
    assert_int_equal(ldg_webdir_load(&d, dist, why, sizeof why), -ENOENT); /* no index.html */
    assert_non_null(strstr(why, "index.html"));

    put(dist, "index.html", "<!doctype html>");
    put(dist, "assets/app-abc.js", "console.log(1)");
    put(dist, "assets/app-abc.js.gz", "GZ");
    put(dist, "lonely.txt.gz", "Z");
    put(dist, ".hidden", "h");
    put(root, "secret.txt", "secret");
    snprintf(path, sizeof path, "%s/leak.txt", dist);
    assert_int_equal(symlink(outside, path), 0);
    snprintf(path, sizeof path, "%s/alias.html", dist);
    snprintf(target, sizeof target, "%s/index.html", dist);
    assert_int_equal(symlink(target, path), 0);

    assert_int_equal(ldg_webdir_load(&d, dist, why, sizeof why), 0);
    assert_int_equal(d.n, 4); /* index.html, assets/app-abc.js (+gz), lonely.txt.gz, alias.html */
    assert_non_null(d.index);
    const struct ldg_webfile *js = ldg_webdir_find(&d, "assets/app-abc.js", 17);
    assert_non_null(js);
    assert_true(js->immutable);
    assert_int_equal(js->len, 14);
    assert_int_equal(js->gz_len, 2);
    assert_memory_equal(js->gz, "GZ", 2);
    assert_string_equal(js->type, "text/javascript; charset=utf-8");
    assert_int_equal(strlen(js->etag), 18);
    assert_string_not_equal(js->etag, js->gz_etag);
    assert_false(d.index->immutable);
    assert_null(d.index->gz);
    assert_null(ldg_webdir_find(&d, "assets/app-abc.js.gz", 20));
    assert_non_null(ldg_webdir_find(&d, "lonely.txt.gz", 13));
    assert_null(ldg_webdir_find(&d, "leak.txt", 8)); /* symlink out of the directory */
    assert_null(ldg_webdir_find(&d, ".hidden", 7));
    assert_non_null(ldg_webdir_find(&d, "alias.html", 10)); /* symlink inside: kept */
    assert_null(ldg_webdir_find(&d, "index.htm", 9));
    assert_null(ldg_webdir_find(&d, "index.html.", 11));
    ldg_webdir_free(&d);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_gzip), cmocka_unit_test(test_etag_matches),
        cmocka_unit_test(test_clean_path),   cmocka_unit_test(test_api_paths),
        cmocka_unit_test(test_mime),         cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
