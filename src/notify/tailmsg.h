/*
 * tailmsg.h: the Redis names and the message format of the live tail (GET /api/v1/logs/tail),
 * shared by its producer (the storage role, after COMMIT) and its consumer (the notifications
 * role's streams). See docs/tail.md.
 *
 *   tail:{p<id>}           pub/sub channel of a project's committed logs
 *   tail:viewers:{p<id>}   sorted set of the project's open tails: member = stream lease member,
 *                          score = expiry (Unix ms); renewed by the streams, read by storage
 *
 * One message: "<dropped>\n<LogEntryResponse JSON>\n<LogEntryResponse JSON>..." where <dropped>
 * is the decimal count of committed logs the producer left out (one log larger than the message
 * bound). A JSON text carries no raw newline, so lines split it.
 *
 * Pure; any thread; buffers are the caller's and appended to.
 */
#ifndef LDG_NOTIFY_TAILMSG_H
#define LDG_NOTIFY_TAILMSG_H

#include "core/buf.h"
#include "core/common.h"
#include "core/str.h"

#define LDG_TAILMSG_NAME_MAX 64

void ldg_tailmsg_channel(char *out, size_t cap, int64_t project_id);
void ldg_tailmsg_viewers_key(char *out, size_t cap, int64_t project_id);

/* The project of a channel name, or 0 when it is not a tail channel. */
int64_t ldg_tailmsg_channel_project(const char *ch, size_t n);

/* Start a message (header with the dropped count). */
void ldg_tailmsg_begin(struct ldg_buf *b, uint64_t dropped);
/* Append one log (a JSON text without raw newlines). */
void ldg_tailmsg_add(struct ldg_buf *b, const char *json, size_t n);

/* Read a message: its dropped count and the logs after the header. false when malformed. */
bool ldg_tailmsg_open(const char *msg, size_t n, uint64_t *dropped, struct ldg_str *logs);
/* The next log of `logs` (consumed from its front); false at the end. */
bool ldg_tailmsg_next(struct ldg_str *logs, struct ldg_str *log);

#endif
