/*
 * webhook_scripts — the Lua scripts of the webhooks (run with bus_eval).
 *
 * Every key of a script carries the partition's hash tag {@wh:p} (P = WEBHOOK_PARTITIONS):
 *   P:{@wh:p}:events     stream of the partition's undelivered events, field e = the event's
 *                        JSON without its id (the id is "<p>-<stream id>", added at delivery)
 *   P:{@wh:p}:u:<user>   set of the nodes holding <user> (only users of partition p)
 *   P:{@wh:p}:node:<N>   set of the users node N holds in partition p (dead-node cleanup)
 *   P:{@wh:p}:lease      the node delivering partition p, with a TTL
 *   P:u:{@wh:p}:ch       "new events" channel (a user-channel name: '@' ids are reserved)
 * so each script is atomic on one server, also on Redis Cluster: a user's online/offline
 * transition and the event that reports it are one write, never one without the other, and
 * a user's events are appended in the order its transitions happened.
 *
 * Retention: every append first trims entries older than the retention (XTRIM MINID, Redis's
 * clock) and returns how many it removed, so dropped events are counted exactly once
 * cluster-wide — here, or by the deliverer when it finds a stale head (ack script).
 */
#ifndef GATEWAY_WEBHOOK_SCRIPTS_H
#define GATEWAY_WEBHOOK_SCRIPTS_H

/* Shared helpers: append(stream, retention_ms, e) → entries trimmed; notify(ch, sharded). */
#define WEBHOOK_LUA_APPEND                                                                       \
    "local function now_ms()\n"                                                                  \
    "  local t = redis.call('TIME')\n"                                                           \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                       \
    "end\n"                                                                                      \
    "local function append(stream, retention, e)\n"                                              \
    "  local minid = string.format('%d', now_ms() - tonumber(retention))\n"                      \
    "  local dropped = redis.call('XTRIM', stream, 'MINID', minid)\n"                            \
    "  redis.call('XADD', stream, '*', 'e', e)\n"                                                \
    "  return dropped\n"                                                                         \
    "end\n"                                                                                      \
    "local function notify(ch, sharded)\n"                                                       \
    "  redis.call(sharded == '1' and 'SPUBLISH' or 'PUBLISH', ch, '- 0 - 1')\n"                  \
    "end\n"

/* KEYS: user's node set, node's user set, stream, channel.
 * ARGV: op ('add' | 'rem'), node, user, event JSON ('' = not sent), retention ms, sharded.
 * → {1 when the event was appended, entries trimmed}. The event goes out only on the
 * transition: the first node arriving (add) or the last one leaving (rem). */
#define WEBHOOK_SCRIPT_USER                                                                      \
    WEBHOOK_LUA_APPEND                                                                           \
    "local changed\n"                                                                            \
    "if ARGV[1] == 'add' then\n"                                                                 \
    "  redis.call('SADD', KEYS[2], ARGV[3])\n"                                                   \
    "  changed = redis.call('SADD', KEYS[1], ARGV[2]) == 1 and redis.call('SCARD', KEYS[1]) == 1\n" \
    "else\n"                                                                                     \
    "  redis.call('SREM', KEYS[2], ARGV[3])\n"                                                   \
    "  changed = redis.call('SREM', KEYS[1], ARGV[2]) == 1 and redis.call('SCARD', KEYS[1]) == 0\n" \
    "end\n"                                                                                      \
    "if not changed or ARGV[4] == '' then return {0, 0} end\n"                                   \
    "local dropped = append(KEYS[3], ARGV[5], ARGV[4])\n"                                        \
    "notify(KEYS[4], ARGV[6])\n"                                                                 \
    "return {1, dropped}\n"

/* KEYS: dead node's user set, stream, channel, lease.
 * ARGV: dead node, prefix of the user sets ("P:{@wh:p}:u:"), ts, '1' to send user.offline,
 * at most this many users, retention ms, sharded.
 * Takes up to the limit of the dead node's users out of its set (one call stays short on a
 * node with many users; the caller repeats while some remain), appends user.offline for each
 * it was the last node of, and frees the lease if the dead node held it. → {users left,
 * entries trimmed}. */
#define WEBHOOK_SCRIPT_NODE_DEAD                                                                 \
    WEBHOOK_LUA_APPEND                                                                           \
    "local dropped, sent = 0, false\n"                                                           \
    "for _, u in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[5]))) do\n"                    \
    "  local k = ARGV[2] .. u\n"                                                                 \
    "  if redis.call('SREM', k, ARGV[1]) == 1 and redis.call('SCARD', k) == 0\n"                 \
    "     and ARGV[4] == '1' then\n"                                                             \
    "    local e = '{\"type\":\"user.offline\",\"ts\":' .. ARGV[3] .. ',\"user\":' ..\n"          \
    "              cjson.encode(u) .. '}'\n"                                                     \
    "    dropped = dropped + append(KEYS[2], ARGV[6], e)\n"                                      \
    "    sent = true\n"                                                                          \
    "  end\n"                                                                                    \
    "end\n"                                                                                      \
    "if sent then notify(KEYS[3], ARGV[7]) end\n"                                                \
    "if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end\n"             \
    "return {redis.call('SCARD', KEYS[1]), dropped}\n"

/* KEYS: stream, channel. ARGV: event JSON, retention ms, sharded. → entries trimmed. */
#define WEBHOOK_SCRIPT_APPEND                                                                    \
    WEBHOOK_LUA_APPEND                                                                           \
    "local dropped = append(KEYS[1], ARGV[2], ARGV[1])\n"                                        \
    "notify(KEYS[2], ARGV[3])\n"                                                                 \
    "return dropped\n"

/* KEYS: lease. ARGV: node, ttl ms. Takes the lease when free, renews it when ours.
 * → 0 when ours, else the ms until its holder's lease expires. */
#define WEBHOOK_SCRIPT_LEASE                                                                     \
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end\n"            \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"                                            \
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                                \
    "  return 0\n"                                                                               \
    "end\n"                                                                                      \
    "return math.max(redis.call('PTTL', KEYS[1]), 1)\n"

/* KEYS: stream, lease. ARGV: node, ttl ms, count. Only for the lease holder (renewed):
 * → {1, stream length, Redis time ms, XRANGE of the oldest `count` entries}; else {0}. */
#define WEBHOOK_SCRIPT_READ                                                                      \
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end\n"                             \
    "redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"                                                  \
    "local t = redis.call('TIME')\n"                                                             \
    "return {1, redis.call('XLEN', KEYS[1]),\n"                                                  \
    "        tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),\n"                       \
    "        redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[3])}\n"

/* KEYS: stream, lease. ARGV: entry id, node, ttl ms. Deletes a delivered (or dropped) entry
 * and renews the lease when ours. → {entries deleted (0: already gone), 1 when the lease is
 * ours, stream length}. */
#define WEBHOOK_SCRIPT_ACK                                                                       \
    "local n = redis.call('XDEL', KEYS[1], ARGV[1])\n"                                           \
    "local ours = 0\n"                                                                           \
    "if redis.call('GET', KEYS[2]) == ARGV[2] then\n"                                            \
    "  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"                                                \
    "  ours = 1\n"                                                                               \
    "end\n"                                                                                      \
    "return {n, ours, redis.call('XLEN', KEYS[1])}\n"

#endif
