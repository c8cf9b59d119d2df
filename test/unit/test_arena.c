#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/arena.h"

static void test_inline_then_heap(void **state)
{
    char first[256];
    struct ldg_arena a;
    ldg_arena_init(&a, first, sizeof first);
    char *p = ldg_arena_alloc(&a, 100);
    assert_true(p >= first && p < first + sizeof first);
    assert_int_equal((uintptr_t)p % 16, 0);
    char *q = ldg_arena_alloc(&a, 200); /* does not fit inline */
    assert_false(q >= first && q < first + sizeof first);
    assert_true(a.heap_bytes > 0);
    char *big = ldg_arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    char *s = ldg_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    ldg_arena_reset(&a);
    assert_int_equal(a.heap_bytes, 0);
    assert_ptr_equal(ldg_arena_alloc(&a, 8), first);
    ldg_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_then_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
