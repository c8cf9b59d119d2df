/*
 * keys.h: the Redis keys and channels of the notifications role, shared by its stream side
 * (notify.c) and its producer side (publish.c). Internal to roles/notify.
 */
#ifndef LDG_ROLES_NOTIFY_KEYS_H
#define LDG_ROLES_NOTIFY_KEYS_H

#include "core/common.h"

#define EVENTS_PREFIX "notifications:events:"
#define ERRORS_PREFIX "notifications:errors:"
#define REPLAY_PREFIX "notifications:replay:"
#define PREFS_CHANNEL "notifications:prefs"
#define LEASE_PREFIX "notifications:streams:"
#define SEQ_KEY "notifications:seq"
#define CLOCK_KEY "notifications:clock"

/* out = prefix followed by the project id. */
void ldg__notify_channel(char *out, size_t cap, const char *prefix, int64_t pid);

#endif
