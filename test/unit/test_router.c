#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <llhttp.h>

#include "http/router.h"

static void h1(struct ldg_req *r)
{
}
static void h2(struct ldg_req *r)
{
}

static struct ldg_router *make(void)
{
    struct ldg_router *r = ldg_router_new();
    assert_int_equal(ldg_router_add(r, "GET", "/health", h1, NULL), 0);
    assert_int_equal(ldg_router_add(r, "GET", "/api/v1/projects/{project_id}/quota", h1, NULL), 0);
    assert_int_equal(ldg_router_add(r, "POST", "/api/v1/projects", h2, NULL), 0);
    assert_int_equal(ldg_router_add(r, "GET", "/api/v1/projects", h1, NULL), 0);
    assert_int_equal(ldg_router_add(r, "DELETE", "/api/v1/api-keys/{key_id}", h2, NULL), 0);
    assert_int_equal(ldg_router_add(r, "GET", "/", h2, NULL), 0);
    return r;
}

static void test_found_and_params(void **state)
{
    struct ldg_router *r = make();
    struct ldg_route_match m;
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/health"), &m), LDG_ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h1);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/api/v1/projects/42/quota"), &m),
                     LDG_ROUTE_FOUND);
    assert_int_equal(m.nparams, 1);
    assert_int_equal(m.params[0].n, 2);
    assert_memory_equal(m.params[0].p, "42", 2);
    assert_int_equal(ldg_router_match(r, HTTP_POST, LDG_STR_LIT("/api/v1/projects"), &m), LDG_ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h2);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/"), &m), LDG_ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h2);
    ldg_router_free(r);
}

static void test_not_found_and_405(void **state)
{
    struct ldg_router *r = make();
    struct ldg_route_match m;
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/nope"), &m), LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/health/"), &m), LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/api/v1/projects//quota"), &m),
                     LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT(""), &m), LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_DELETE, LDG_STR_LIT("/health"), &m), LDG_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, HEAD, OPTIONS");
    assert_int_equal(ldg_router_match(r, HTTP_PUT, LDG_STR_LIT("/api/v1/projects"), &m),
                     LDG_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST, GET, HEAD, OPTIONS");
    ldg_router_free(r);
}

static void test_head_uses_get(void **state)
{
    struct ldg_router *r = make();
    struct ldg_route_match m;
    assert_int_equal(ldg_router_match(r, HTTP_HEAD, LDG_STR_LIT("/health"), &m), LDG_ROUTE_FOUND);
    ldg_router_free(r);
}

static void test_bad_routes(void **state)
{
    struct ldg_router *r = make();
    assert_int_equal(ldg_router_add(r, "GET", "/health", h2, NULL), -EEXIST);
    assert_int_equal(ldg_router_add(r, "BREW", "/coffee", h2, NULL), -EINVAL);
    assert_int_equal(ldg_router_add(r, "GET", "relative", h2, NULL), -EINVAL);
    assert_int_equal(ldg_router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}", h2, NULL), -EINVAL);
    char allow[96];
    assert_true(ldg_router_allowed(r, LDG_STR_LIT("/api/v1/api-keys/7"), allow, sizeof allow));
    assert_string_equal(allow, "DELETE, OPTIONS");
    assert_false(ldg_router_allowed(r, LDG_STR_LIT("/api/v1/api-keys"), allow, sizeof allow));
    ldg_router_free(r);
}

static bool claims_not_api(struct ldg_str path)
{
    return !(path.n >= 4 && memcmp(path.p, "/api", 4) == 0);
}

static void test_fallback(void **state)
{
    struct ldg_router *r = make();
    struct ldg_route_match m;
    assert_int_equal(ldg_router_set_fallback(r, "/{static}", claims_not_api, h2), 0);
    assert_int_equal(ldg_router_set_fallback(r, "/{other}", claims_not_api, h2), -EEXIST);
    /* Real routes win; the fallback never matches by its pattern. */
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/health"), &m), LDG_ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h1);
    /* Unmatched GET/HEAD paths it claims (even deeper than any route). */
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/logs"), &m), LDG_ROUTE_FOUND);
    assert_true(m.route->flags & LDG_ROUTE_FALLBACK);
    assert_true(m.route->flags & LDG_ROUTE_PUBLIC);
    assert_int_equal(ldg_router_match(r, HTTP_HEAD, LDG_STR_LIT("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o"), &m),
                     LDG_ROUTE_FOUND);
    assert_true(m.route->flags & LDG_ROUTE_FALLBACK);
    /* Not claimed, other methods, and paths with routes of other methods: unchanged. */
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/api/v1/nope"), &m), LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_POST, LDG_STR_LIT("/logs"), &m), LDG_ROUTE_NOT_FOUND);
    assert_int_equal(ldg_router_match(r, HTTP_DELETE, LDG_STR_LIT("/health"), &m), LDG_ROUTE_BAD_METHOD);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("/api/v1/api-keys/7"), &m),
                     LDG_ROUTE_BAD_METHOD);
    assert_int_equal(ldg_router_match(r, HTTP_GET, LDG_STR_LIT("relative"), &m), LDG_ROUTE_NOT_FOUND);
    ldg_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_and_params),
        cmocka_unit_test(test_not_found_and_405),
        cmocka_unit_test(test_head_uses_get),
        cmocka_unit_test(test_bad_routes),
        cmocka_unit_test(test_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
