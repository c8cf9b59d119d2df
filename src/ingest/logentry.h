/*
 * logentry.h: one JSON log object → a validated, enriched struct ldg_log (reference §4.1–§4.3,
 * decisions D6 and D10).
 *
 * Pure: no I/O, no loop, no global state; any thread, any callback. The tree passed in comes from
 * ldg_json_parse, so every string in it is valid, NUL-free UTF-8.
 *
 * Validation order follows the reference: first the per-field checks (types, enums, lengths, in the
 * field order of §4.1), then the per-log rules of §4.2 (future timestamp, attributes size, exception
 * fields, endpoint attributes). Only the first failure is reported. Messages are client-facing and
 * carry no prefix; the batch handler prepends `Log <i>: `.
 */
#ifndef LDG_INGEST_LOGENTRY_H
#define LDG_INGEST_LOGENTRY_H

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "ingest/log.h"

/*
 * Validate obj (one log object) and fill *out. project_id comes from the API key; now_us is the
 * server's wall clock (Unix µs, UTC), used for the future-timestamp check and as ingested_us.
 *
 * Returns 0 with *out filled, or -EINVAL with a message written to err (NUL-terminated, truncated to
 * errlen; err may be NULL when errlen is 0). On failure *out is unspecified.
 *
 * Ownership: the string slices in *out and out->attributes_tree borrow from obj (valid as long as
 * its tree); out->attributes (the text) is left empty: ldg_logentry_attributes_text fills it when
 * it is needed. level, log_type and importance point to static strings. Nothing in *out needs
 * freeing. `arena` is for what validation needs to allocate.
 */
int ldg_logentry_parse(const cJSON *obj, int64_t project_id, int64_t now_us, struct ldg_arena *arena,
                       struct ldg_log *out, char *err, size_t errlen) LDG_MUSTCHECK;

/* Fill l->attributes with the compact JSON text of l->attributes_tree (allocated from arena), if
 * there is a tree and no text yet. */
void ldg_logentry_attributes_text(struct ldg_log *l, struct ldg_arena *arena);

/*
 * Error fingerprint of §4.3: lowercase hex SHA-256 of
 * `<error_type or "UnknownError">:<first three frames "path:line" joined by "|">:<platform or "unknown">`,
 * frames taken from stack_trace[0..st_len) by the first of the Python, Node and Java patterns that
 * yields one (matches never cross a newline). error_type and platform are NUL-terminated, and NULL or
 * "" selects the fallback. Writes 64 hex digits and a NUL to out. The caller decides whether a
 * fingerprint applies (ldg_logentry_parse: only exception logs with a non-empty stack trace).
 */
void ldg_logentry_fingerprint(const char *error_type, const char *stack_trace, size_t st_len,
                              const char *platform, char out[LDG_LOG_FINGERPRINT_LEN + 1]);

/*
 * Parse a timestamp value (the `timestamp` member; NULL when absent). Accepted:
 *   - strings `YYYY-MM-DD[T| ]HH:MM[:SS[.f…]]` (T/t or space; 1–9 fraction digits after '.' or ',',
 *     truncated to µs) followed by `Z`/`z`, `±HH:MM` or `±HHMM`;
 *   - numbers (and strings that are plain decimal numbers, as pydantic accepts): Unix seconds, or
 *     milliseconds when |v| > 2e10; fractions allowed, rounded to the µs.
 * The result must lie in years 1..9999 UTC (what Python's datetime can hold).
 * Returns 0 with *us (Unix µs, UTC) and *offset_min (the written offset; 0 for Z and numbers), or
 * -EINVAL with a message in err: naive strings (no offset) get
 * `Timestamp must include a timezone offset or 'Z'`. No future check here.
 */
int ldg_logentry_parse_time(const cJSON *v, int64_t *us, int32_t *offset_min, char *err,
                            size_t errlen) LDG_MUSTCHECK;

/*
 * Length of Python's json.dumps(v) with default arguments (separators ", " and ": ", ensure_ascii),
 * which is what §4.2 rule 3 limits. Stops counting once the total passes `cap` (returns some value
 * > cap). Exposed for tests. See logentry.c for the one approximation (numbers).
 */
size_t ldg_logentry_pyjson_len(const cJSON *v, size_t cap);
/* ldg_logentry_pyjson_len(v, cap) > cap, printing no number when a bound that counts every
 * non-integral number at its longest repr is already within cap. */
bool ldg_logentry_pyjson_over(const cJSON *v, size_t cap);

#endif
