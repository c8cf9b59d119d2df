/*
 * event.h: Server-Sent Events framing and event ids (reference §3.8, decisions D7).
 *
 * Wire format (every line ends with CRLF, as the reference's server sends it):
 *   id: <id>            only on error_notification events: the Redis stream id of the notification
 *   event: <name>
 *   data: <line>        one per line of the data (the JSON carries no raw newline, so one)
 *   <blank line>
 * and comments ": ping - <YYYY-MM-DD HH:MM:SS.ffffff>" followed by a blank line.
 *
 * Event ids are Redis stream ids "<ms>-<seq>" of the per-project replay stream: ordered by the
 * Redis server's clock, so one id is a cursor over every project of a stream.
 *
 * Published payload (channel notifications:events:<project_id>): "<id>\n<§5.2 JSON>".
 *
 * Everything here is pure: any thread; output buffers are the caller's and appended to.
 */
#ifndef LDG_NOTIFY_EVENT_H
#define LDG_NOTIFY_EVENT_H

#include "core/buf.h"
#include "core/common.h"
#include "core/str.h"

#define LDG_EVENT_ID_MAX 41 /* "<20 digits>-<20 digits>" */

struct ldg_event_id {
    uint64_t ms, seq;
};

/* Append one event. `id` may be NULL (no id line). Data lines are split on '\n' (a '\r' before it
 * is dropped), so any text makes a well-formed event. */
void ldg_event_format(struct ldg_buf *out, const char *id, size_t idlen, const char *name, const char *data,
                      size_t n);

/* Append a comment ": <text>" and the blank line (text must not contain CR or LF). */
void ldg_event_comment(struct ldg_buf *out, const char *text);

/* Parse a stream id "<ms>-<seq>" (decimal, no sign, no spaces; "<ms>" alone means seq 0).
 * Returns false when malformed or out of range. */
bool ldg_event_id_parse(const char *s, size_t n, struct ldg_event_id *out);

/* Format id as "<ms>-<seq>" into out (>= LDG_EVENT_ID_MAX + 1 bytes); returns its length. */
size_t ldg_event_id_format(const struct ldg_event_id *id, char *out);

/* <0, 0, >0 as a is before, equal to or after b. */
int ldg_event_id_cmp(const struct ldg_event_id *a, const struct ldg_event_id *b);

/* Split a published payload into its id and JSON. Returns false when there is no newline, the id
 * is malformed or the JSON is empty. The slices point into msg. */
bool ldg_event_split(const char *msg, size_t n, struct ldg_str *id, struct ldg_event_id *parsed,
                     struct ldg_str *json);

/* A published note is either the JSON of an error notification ("{...}": event error_notification)
 * or a typed event "<name>\n<json>" (name: 1..32 of [a-z_], e.g. "error_regression"). Sets the
 * event name and its data (slices of note). Returns false for anything else. */
#define LDG_EVENT_DEFAULT_NAME "error_notification"
bool ldg_event_note(const char *note, size_t n, struct ldg_str *name, struct ldg_str *data);

/* A UTC wall-clock time (microseconds since the epoch) the way Python prints datetimes:
 * iso (true):  "2025-11-30T12:00:00.123456Z" (isoformat() + "Z"),
 * iso (false): "2025-11-30 12:00:00.123456" (str()).
 * The fraction is left out when it is zero, as Python does. out needs 40 bytes. */
void ldg_event_time(int64_t wall_us, bool iso, char *out);

#endif
