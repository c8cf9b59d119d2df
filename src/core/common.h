/*
 * common.h: includes and small macros every ledgerd module uses.
 * Pure header; no state. Safe from any thread.
 */
#ifndef LDG_COMMON_H
#define LDG_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LDG_VERSION "0.1.0"

#define LDG_MUSTCHECK __attribute__((warn_unused_result))
#define LDG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define LDG_NORETURN __attribute__((noreturn))
#define LDG_UNUSED __attribute__((unused))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define LDG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LDG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LDG_MAX(a, b) ((a) > (b) ? (a) : (b))

#define ldg_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* "Would block, call again" (nginx NGX_AGAIN). Negative like every error code. */
#define LDG_AGAIN (-11000)

LDG_NORETURN void ldg_panic_at(const char *file, int line, const char *fmt, ...) LDG_PRINTF(3, 4);
#define ldg_panic(...) ldg_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Always on and cheap: logs file:line and aborts. */
#define LDG_ASSERT(cond)                                                                                     \
    do {                                                                                                     \
        if (unlikely(!(cond)))                                                                               \
            ldg_panic_at(__FILE__, __LINE__, "assertion failed: %s", #cond);                                 \
    } while (0)

#endif
