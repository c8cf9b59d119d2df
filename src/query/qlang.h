/*
 * qlang.h: the search query language of GET /api/v1/logs/search (decisions D1).
 *
 *   timeout                    full-text word (message, error_message, error_type)
 *   "connection refused"       full-text phrase (the words in this order)
 *   level:error                field equality: level, log_type, importance, environment, release,
 *   env:"eu west"                error_type, platform, error_fingerprint (env is environment)
 *   attributes.user.id:"42"    JSONB attribute at a dotted path; a bare 42/true/false also
 *                              matches the JSON number/boolean
 *   message:/time(d)?out/i     POSIX regular expression on message (i: case-insensitive)
 *   a AND b, a b               conjunction (AND is implicit between terms)
 *   a OR b                     disjunction (binds looser than AND)
 *   NOT a                      negation (binds tighter than AND)
 *   ( ... )                    grouping
 *
 * AND, OR and NOT are operators only in upper case; "and" is a word. Inside quotes \" and \\
 * escape; inside /regex/ \/ stands for a slash (every other backslash is kept for the regex).
 *
 * Two steps, both pure (any thread; no I/O, no globals):
 *   ldg_qlang_parse    text -> AST, or an error with the position (1-based, in characters) and a
 *                      message for the client;
 *   ldg_qlang_compile  AST -> a parameterised SQL boolean expression over the `logs` columns
 *                      plus its parameters (text, in order). Values are never written into the
 *                      SQL text; only placeholders ($n) and fixed SQL are.
 *
 * Bounds: at most LDG_QLANG_MAX_LEN bytes of query, LDG_QLANG_MAX_TERMS terms, parentheses and
 * NOT nested at most LDG_QLANG_MAX_DEPTH deep, regular expressions at most LDG_QLANG_MAX_REGEX
 * bytes, attribute paths at most LDG_QLANG_MAX_PATH segments.
 *
 * Memory: every node, string and parameter is allocated in the caller's arena and lives as long
 * as it.
 */
#ifndef LDG_QUERY_QLANG_H
#define LDG_QUERY_QLANG_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/common.h"

#define LDG_QLANG_MAX_LEN 2048
#define LDG_QLANG_MAX_TERMS 32
#define LDG_QLANG_MAX_DEPTH 16
#define LDG_QLANG_MAX_REGEX 512
#define LDG_QLANG_MAX_PATH 8

/* The full-text document of a log. Search indexes are built on exactly this expression (see
 * docs/query.md), so the planner can match it. */
#define LDG_QLANG_FTS_DOC                                                                                    \
    "to_tsvector('simple'::regconfig, ledger_search_words(coalesce(message, '') || ' ' || "                  \
    "coalesce(error_message, '') || ' ' || coalesce(error_type, '')))"

enum ldg_qnode_kind {
    LDG_QNODE_WORD,   /* value: one full-text word */
    LDG_QNODE_PHRASE, /* value: words in order */
    LDG_QNODE_FIELD,  /* field: column name, value: exact value */
    LDG_QNODE_ATTR,   /* field: dotted path (without "attributes."), value; quoted: string only */
    LDG_QNODE_REGEX,  /* field: "message", value: pattern, icase */
    LDG_QNODE_AND,
    LDG_QNODE_OR,
    LDG_QNODE_NOT, /* left only */
};

struct ldg_qnode {
    enum ldg_qnode_kind kind;
    size_t pos;                     /* byte offset of the node's first character in the query */
    const char *field;              /* arena, NUL-terminated; NULL for WORD/PHRASE and operators */
    const char *value;              /* arena, NUL-terminated (values never hold NUL); NULL for operators */
    bool quoted;                    /* the value was written in quotes */
    bool icase;                     /* REGEX: /.../i */
    struct ldg_qnode *left, *right; /* operators: operands (NOT: left) */
};

struct ldg_qerror {
    size_t pos;    /* 1-based position in characters (code points) of the offending text */
    char msg[160]; /* for the client, e.g. "expected ')'" */
};

/* Parse q[0..n). Returns 0 with *out (never NULL: an empty query is an error), or -EINVAL with err
 * filled. q must be valid UTF-8 (checked: error at position 1 otherwise) without NUL bytes. */
int ldg_qlang_parse(const char *q, size_t n, struct ldg_arena *a, struct ldg_qnode **out,
                    struct ldg_qerror *err) LDG_MUSTCHECK;

/* What a compiled query needs, for the caller's safety rules. */
#define LDG_QLANG_USES_REGEX 0x1u /* contains a regular expression */
#define LDG_QLANG_USES_TEXT 0x2u  /* contains full-text words or phrases */

/* Parameters of a compiled expression, text, in placeholder order. */
struct ldg_qparams {
    const char **v; /* arena */
    size_t n, cap;
};

/* Append the SQL boolean expression of `root` to sql. Its placeholders are numbered from
 * first_param ($first_param, $first_param+1, ...), their values appended to params (which may
 * already hold the caller's own parameters: they must number first_param - 1). Returns the
 * LDG_QLANG_USES_* flags. Never fails for a tree returned by ldg_qlang_parse. */
unsigned ldg_qlang_compile(const struct ldg_qnode *root, struct ldg_arena *a, struct ldg_buf *sql,
                           struct ldg_qparams *params);

/* Append one parameter (borrowed: it must live as long as params, e.g. in the same arena) and
 * return its placeholder number ($n). */
int ldg_qparams_add(struct ldg_qparams *p, struct ldg_arena *a, const char *value);

/* SQL for attribute equality at a dotted path (the list endpoint's attributes.<path>=<value> and
 * the language's attributes.<path>:value): containment tests that a GIN jsonb_path_ops index can
 * serve. string_only: only the JSON string equals value; otherwise a value that reads as a JSON
 * number, true or false also matches that JSON value. Returns 0, or -EINVAL (with err) for an
 * empty segment or more than LDG_QLANG_MAX_PATH segments. */
int ldg_qlang_attr_sql(const char *path, const char *value, bool string_only, struct ldg_arena *a,
                       struct ldg_buf *sql, struct ldg_qparams *params, char *err,
                       size_t errlen) LDG_MUSTCHECK;

#endif
