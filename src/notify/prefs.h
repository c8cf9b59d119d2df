/*
 * prefs.h: an account's notification preferences (reference §3.8 N1/N2) and the per-notification
 * filter of a stream.
 *
 * Filter (reference §3.8): drop if `enabled` is false; find the project's entry by its id; no
 * entry -> send; entry disabled -> drop; non-empty `levels` -> send only if the notification's
 * level (case-insensitive) is listed; non-empty `types` -> send only if its log_type is listed
 * (exact match).
 *
 * Parsing is lenient the way N1 renders a stored document: wrong types become the defaults,
 * project keys that are not plain decimal ids never match, non-string list items are skipped.
 *
 * Pure: any thread. A struct ldg_prefs owns its memory (ldg_prefs_free).
 */
#ifndef LDG_NOTIFY_PREFS_H
#define LDG_NOTIFY_PREFS_H

#include "core/common.h"

struct ldg_prefs_project {
    int64_t id;
    bool enabled;
    size_t nlevels, ntypes;
    char **levels; /* owned */
    char **types;  /* owned */
};

struct ldg_prefs {
    bool enabled;
    size_t nprojects;
    struct ldg_prefs_project *projects; /* owned */
};

/* Defaults: enabled, no project entries. */
void ldg_prefs_init(struct ldg_prefs *p);

/* Replace p with the document json[0..n) (NULL or unparsable: the defaults). Returns 0, or
 * -EINVAL when the text is not a JSON object (p then holds the defaults). */
int ldg_prefs_parse(struct ldg_prefs *p, const char *json, size_t n);

void ldg_prefs_free(struct ldg_prefs *p);

/* Should a notification of project_id with this level and log_type be sent? level NULL: an event
 * that is not about one log (error_regression): only `enabled` and the project's entry decide. */
bool ldg_prefs_allow(const struct ldg_prefs *p, int64_t project_id, const char *level, size_t level_len,
                     const char *type, size_t type_len);

#endif
