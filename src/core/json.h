/*
 * json.h: JSON for request bodies and responses.
 *
 * Writing: struct ldg_json_writer appends to a struct ldg_buf and inserts commas itself. Strings
 * are escaped as JSON requires: `"` and `\` escaped, \n \r \t as such, other control characters as
 * \u00XX, valid UTF-8 passed through unchanged, and any byte that is not part of valid UTF-8
 * replaced by \ufffd, so the output is always valid JSON. Nesting is limited to
 * LDG_JSON_MAX_DEPTH; exceeding it, or writing a value where a key is due, is a programming error
 * and asserts.
 *
 * Reading: ldg_json_parse parses a whole body with cJSON; the getters check presence, type and
 * bounds of one member of an object and write a client-facing message on failure, such as
 * `Field 'name' is required`, `Field 'name' must be a string`,
 * `Field 'name' must be at most 255 characters`. String lengths count Unicode code points, as
 * Python's len() does.
 *
 * Everything here is pure but ldg_json_init: any thread. A writer and the tree returned by
 * ldg_json_parse belong to their caller and are not thread-safe.
 *
 * Allocation: ldg_json_init routes cJSON's allocations through hooks so that ldg_json_parse_in can
 * build a tree in an arena (one bump allocation per node instead of a malloc, no frees: ingest
 * parses up to 1000 logs per body and malloc/free was a quarter of its CPU). Outside
 * ldg_json_parse_in the hooks are plain malloc/free.
 */
#ifndef LDG_CORE_JSON_H
#define LDG_CORE_JSON_H

#include <cjson/cJSON.h>

#include "core/buf.h"

#define LDG_JSON_MAX_DEPTH 31

struct ldg_json_writer {
    struct ldg_buf *b;                  /* borrowed: output, appended to */
    int depth;                          /* open containers; 0 = top level */
    bool first[LDG_JSON_MAX_DEPTH + 1]; /* first[d]: nothing written yet in the container at depth d */
    bool after_key;                     /* a key was written; its value comes next (no comma) */
    uint32_t obj_mask;                  /* bit d set: the container at depth d is an object */
};

/* Start writing into b (borrowed; must outlive the writer). Existing contents are kept. */
void ldg_json_writer_init(struct ldg_json_writer *w, struct ldg_buf *b);

void ldg_json_obj_begin(struct ldg_json_writer *w);
void ldg_json_obj_end(struct ldg_json_writer *w);
void ldg_json_arr_begin(struct ldg_json_writer *w);
void ldg_json_arr_end(struct ldg_json_writer *w);
/* Member name inside an object (NUL-terminated, escaped like a string). The next call writes its value. */
void ldg_json_key(struct ldg_json_writer *w, const char *name);
/* String value; s NULL writes null. */
void ldg_json_str(struct ldg_json_writer *w, const char *s);
void ldg_json_strn(struct ldg_json_writer *w, const char *s, size_t n);
void ldg_json_int(struct ldg_json_writer *w, int64_t v);
/* Shortest of %.15g / %.17g that reads back exactly; NaN and infinities write null. */
void ldg_json_double(struct ldg_json_writer *w, double v);
void ldg_json_bool(struct ldg_json_writer *w, bool v);
void ldg_json_null(struct ldg_json_writer *w);
/* Preformatted JSON value (borrowed, copied as is; the caller guarantees it is valid). */
void ldg_json_raw(struct ldg_json_writer *w, const char *json, size_t n);

/* Append s[0..n) to b as the inside of a JSON string (no quotes), escaped as described above. */
void ldg_json_escape(struct ldg_buf *b, const char *s, size_t n);

/* Count the code points of s[0..n) into *out. Returns 0, or -EINVAL if s is not valid UTF-8
 * (overlong forms, surrogates, values over U+10FFFF and truncated sequences are invalid). */
int ldg_utf8_count(const char *s, size_t n, size_t *out) LDG_MUSTCHECK;

/* Parse a whole document from data[0..len) (need not be NUL-terminated; only whitespace may follow
 * the value). Returns an owned tree (cJSON_Delete it) or NULL if the text is not JSON, is not
 * valid UTF-8, or contains a NUL character (raw or as \u0000, which C strings cannot carry).
 * Every string in a returned tree is therefore valid, NUL-free UTF-8. Duplicate member names are
 * kept by cJSON; the getters below use the last one, as Python's json module does. */
cJSON *ldg_json_parse(const char *data, size_t len);
/* The same; on failure *err_pos is the byte offset where the text stops being valid JSON (the
 * first bad byte: invalid UTF-8, an escaped NUL, a syntax error, or trailing text; 0 for an empty
 * text). Clients see it in error answers so they can find the problem. */
cJSON *ldg_json_parse_at(const char *data, size_t len, size_t *err_pos);

/* Install the allocation hooks. Call once in the main thread before any other thread uses cJSON
 * (ldg_json_parse_in also does, once, for programs that do not). */
void ldg_json_init(void);

/* ldg_json_parse with every node and string allocated in `arena`. The tree lives until the arena
 * is reset and must never be given to cJSON_Delete or to anything that frees or adds nodes. */
struct ldg_arena;
cJSON *ldg_json_parse_in(const char *data, size_t len, struct ldg_arena *arena, size_t *err_pos);

/* Between these two calls, cJSON nodes this thread creates (cJSON_Create*, cJSON_Add*) are
 * allocated in `arena`, under the same rules as a tree of ldg_json_parse_in; so is the text of
 * cJSON_Print* (never free it). No nesting. */
void ldg_json_build_begin(struct ldg_arena *arena);
void ldg_json_build_end(void);

/* Write a client-facing message into err (NUL-terminated, truncated to errlen; err may be NULL
 * when errlen is 0) and return -EINVAL: the failure path of the getters below and of validators
 * built on them. */
int ldg_json_fail(char *err, size_t errlen, const char *fmt, ...) LDG_PRINTF(3, 4);

/* Last member `name` of obj (NULL if obj is not an object or has no such member). */
const cJSON *ldg_json_member(const cJSON *obj, const char *name);

/*
 * Getters. `obj` is the object holding member `name`. Common contract:
 *   returns 1  the member is present and valid; *out is set;
 *           0  the member is absent or null and not required; *out is left alone
 *              (ldg_json_get_string sets it to NULL);
 *     -EINVAL  absent/null but required, wrong type, or out of bounds (also when obj is not an
 *              object): a message for the client is written to err (NUL-terminated, truncated
 *              to errlen; err may be NULL when errlen is 0).
 * String results point into the tree (borrowed; valid until cJSON_Delete).
 */

/* Lengths count code points; max_chars 0 means no upper bound. */
int ldg_json_get_string(const cJSON *obj, const char *name, bool required, size_t min_chars, size_t max_chars,
                        const char **out, char *err, size_t errlen) LDG_MUSTCHECK;
/* Integral numbers in [min, max] (1.0 counts as an integer; 1.5 does not). */
int ldg_json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen) LDG_MUSTCHECK;
int ldg_json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, char *err,
                      size_t errlen) LDG_MUSTCHECK;

#endif
