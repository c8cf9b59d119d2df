/*
 * reconcile.c: the queue counters' reconciler script (see reconcile.h).
 */
#include "roles/storage/reconcile.h"

#include <errno.h>

/*
 * Entries are read 16 at a time (at most 16 coalesced flights of about 1 MiB in Lua at once); an
 * entry without n holds one log, an entry without p counts for no project (as in the ack script).
 * A counter that should be 0 is deleted rather than set to 0.
 */
const char ldg_reconcile_lua[] =
    "local len = redis.call('XLEN', KEYS[1])\n"
    "if len > tonumber(ARGV[1]) then return {1, len, 0, 0, 0, 0} end\n"
    "if len > 0 then\n"
    "  local mem = redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '0') or 0\n"
    "  if mem > tonumber(ARGV[2]) then return {2, mem, 0, 0, 0, 0} end\n"
    "end\n"
    "local d, b, from, seen = {}, {}, '-', 0\n"
    "while true do\n"
    "  local es = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 16)\n"
    "  if #es == 0 then break end\n"
    "  for _, e in ipairs(es) do\n"
    "    local f, p, n, m = e[2], nil, 1, 0\n"
    "    for i = 1, #f - 1, 2 do\n"
    "      local k = f[i]\n"
    "      if k == 'p' then p = f[i + 1]\n"
    "      elseif k == 'n' then n = tonumber(f[i + 1]) or 1\n"
    "      elseif k == 'm' then m = #f[i + 1] end\n"
    "    end\n"
    "    if p then d[p], b[p] = (d[p] or 0) + n, (b[p] or 0) + m end\n"
    "  end\n"
    "  seen = seen + #es\n"
    "  from = '(' .. es[#es][1]\n"
    "end\n"
    "local fd, fb, dd, db = 0, 0, 0, 0\n"
    "for i = 3, #ARGV do\n"
    "  local p = ARGV[i]\n"
    "  for c = 1, 2 do\n"
    "    local key, want = 'queue_depth:' .. p, d[p] or 0\n"
    "    if c == 2 then key, want = 'queue_bytes:' .. p, b[p] or 0 end\n"
    "    local have = tonumber(redis.call('GET', key) or '0') or 0\n"
    "    if have ~= want then\n"
    "      if want == 0 then redis.call('DEL', key) else redis.call('SET', key, want) end\n"
    "      if c == 1 then fd, dd = fd + 1, dd + math.abs(have - want)\n"
    "      else fb, db = fb + 1, db + math.abs(have - want) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {0, seen, fd, fb, dd, db}\n";

int ldg_reconcile_parse(const redisReply *reply, struct ldg_reconcile_result *out)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 6)
        return -EPROTO;
    long long v[6];
    for (size_t i = 0; i < 6; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER)
            return -EPROTO;
        v[i] = reply->element[i]->integer;
    }
    if (v[0] < LDG_RECONCILE_CHECKED || v[0] > LDG_RECONCILE_TOO_MANY_BYTES)
        return -EPROTO;
    *out = (struct ldg_reconcile_result){(enum ldg_reconcile_status)v[0], v[1], v[2], v[3], v[4], v[5]};
    return 0;
}
