/*
 * qeval.h: the search query language (query/qlang.h) evaluated against one log in memory, for the
 * live tail, with the semantics of the SQL that ldg_qlang_compile emits:
 *
 *   WORD     every word of the value is a word of the log's document (message, error_message and
 *            error_type, in that order), as plainto_tsquery('simple', value) @@ to_tsvector(...);
 *   PHRASE   the value's words appear consecutively in the document (phraseto_tsquery);
 *   FIELD    the field's string equals the value (a null field matches nothing);
 *   ATTR     the value at the dotted path of `attributes` (objects all the way) is the string
 *            value, or, unquoted, the JSON number, true, false or null it reads as (jsonb @>);
 *   REGEX    POSIX extended regular expression (regcomp) on message, REG_ICASE for /.../i;
 *   AND, OR  as usual; NOT x is true when x is not true (SQL's `IS NOT TRUE`: a null field or a
 *            missing attribute under NOT matches, as in the SQL).
 *
 * Words: PostgreSQL's `simple` configuration lowercases the tokens of its default parser. Here a
 * word is a maximal run of ASCII letters and digits and non-ASCII bytes, with ASCII letters
 * lowercased. The two agree on ordinary text; where the parser makes compound tokens (hyphenated
 * words, e-mail addresses, host names, URLs, paths, versions such as 1.2.3) PostgreSQL indexes the
 * compound as well as (for some) its parts, and a query naming the compound (`foo-bar`) then needs
 * it in the log, while here its parts suffice. Non-ASCII letters are not case-folded here. See
 * docs/query.md.
 *
 * Regular expressions: PostgreSQL's are Tcl AREs; here they are POSIX EREs as glibc implements
 * them (which also knows \w \W \s \S \b \< \>), with \d and \D rewritten to [0-9] and [^0-9]
 * outside brackets. A pattern regcomp refuses is an error of ldg_qeval_new.
 *
 * Memory: an evaluator copies everything it needs (the tree and the request may go away); it is
 * immutable after ldg_qeval_new, so one evaluator may serve any number of logs. Not thread-safe
 * only in the sense that regexec may be called concurrently (glibc allows it).
 */
#ifndef LDG_QUERY_QEVAL_H
#define LDG_QUERY_QEVAL_H

#include <cjson/cJSON.h>

#include "core/common.h"
#include "query/qlang.h"

struct ldg_qeval;

/* A log being evaluated: the LogEntryResponse object (borrowed), and its document's words,
 * computed by the first word or phrase test and kept for the next evaluators of the same log. */
struct ldg_qdoc {
    const cJSON *log; /* borrowed */
    bool tokenized;
    char *text;         /* owned: the lowercased document */
    uint32_t *tok;      /* owned: offset and length of each word in text, interleaved */
    size_t ntok;
};

/* Build an evaluator of `root` (a tree of ldg_qlang_parse over q[0..n), which is used only for
 * error positions). Returns 0, or -EINVAL with err filled (a regular expression regcomp refuses:
 * its position, "invalid regular expression: <reason>"). */
int ldg_qeval_new(const struct ldg_qnode *root, const char *q, size_t n, struct ldg_qeval **out,
                  struct ldg_qerror *err) LDG_MUSTCHECK;
void ldg_qeval_free(struct ldg_qeval *e);

void ldg_qdoc_init(struct ldg_qdoc *d, const cJSON *log);
void ldg_qdoc_free(struct ldg_qdoc *d);

/* Does the log match? */
bool ldg_qeval_match(const struct ldg_qeval *e, struct ldg_qdoc *d);

#endif
