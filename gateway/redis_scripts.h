/*
 * redis_scripts — the Lua scripts that make a room's offset, epoch, log and fan-out agree.
 *
 * Keys of room R (prefix P): P:{R}:seq (last offset), P:{R}:log (stream, IDs <offset>-0,
 * fields m = message frame JSON, s = sender conn id),
 * P:{R}:epoch, channel P:{R}:ch. {R} is a hash tag so one room's keys share a shard/slot.
 *
 * Invariant kept by both scripts: seq exists iff epoch exists. If either is missing (first use,
 * or Redis lost the data), a new epoch is taken from ARGV and seq restarts at 0, and any log
 * left from before is deleted, so offsets restart from 1 under a new epoch (PROTOCOL.md §2).
 */
#ifndef GATEWAY_REDIS_SCRIPTS_H
#define GATEWAY_REDIS_SCRIPTS_H

/* KEYS: seq log epoch channel; ARGV: head tail sender candidate_epoch maxlen ttl_s
 * Returns {offset, epoch}. */
#define REDIS_SCRIPT_PUBLISH                                                                  \
    "local epoch = redis.call('GET', KEYS[3])\n"                                              \
    "if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then\n"                            \
    "  epoch = ARGV[4]\n"                                                                     \
    "  redis.call('SET', KEYS[3], epoch)\n"                                                   \
    "  redis.call('SET', KEYS[1], 0)\n"                                                       \
    "  redis.call('DEL', KEYS[2])\n"                                                          \
    "end\n"                                                                                   \
    "local off = redis.call('INCR', KEYS[1])\n"                                               \
    "local msg = ARGV[1] .. off .. ARGV[2]\n"                                                 \
    "if tonumber(ARGV[5]) > 0 then\n"                                                         \
    "  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], off .. '-0', 'm', msg, 's', ARGV[3])\n" \
    "  redis.call('EXPIRE', KEYS[2], ARGV[6])\n"                                              \
    "end\n"                                                                                   \
    "redis.call('PUBLISH', KEYS[4], epoch .. ' ' .. off .. ' ' .. ARGV[3] .. ' ' .. msg)\n"  \
    "return {off, epoch}\n"

/* KEYS: seq log epoch; ARGV: candidate_epoch. Returns {offset, epoch}. */
#define REDIS_SCRIPT_SYNC                                                                     \
    "local epoch = redis.call('GET', KEYS[3])\n"                                              \
    "if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then\n"                            \
    "  epoch = ARGV[1]\n"                                                                     \
    "  redis.call('SET', KEYS[3], epoch)\n"                                                   \
    "  redis.call('SET', KEYS[1], 0)\n"                                                       \
    "  redis.call('DEL', KEYS[2])\n"                                                          \
    "end\n"                                                                                   \
    "return {tonumber(redis.call('GET', KEYS[1])), epoch}\n"

/* KEYS: one or two user channels; ARGV: payload. Publishes to each; returns receivers. */
#define REDIS_SCRIPT_DIRECT                                                                   \
    "local n = 0\n"                                                                           \
    "for i, k in ipairs(KEYS) do n = n + redis.call('PUBLISH', k, ARGV[1]) end\n"             \
    "return n\n"

/*
 * Presence of room R: P:{R}:users (zset user → latest expiry, ms), P:{R}:names (hash user →
 * display name), and per user P:{R}:pu:<user> (zset node → expiry): the nodes where that user
 * has connections in R. Nodes refresh their entries every half heartbeat; an entry not
 * refreshed for two heartbeats is dead (its node died). user_joined/user_left are published on
 * the room channel as ephemeral frames ("- 0 <sender> <json>", JSON built by Redis's cjson)
 * exactly when a user's first node arrives / last node goes, inside the same script, so two
 * nodes can never both announce (or both miss) it.
 */

/* KEYS: pu users names ch; ARGV: node user name exp_ms now_ms room sender */
#define REDIS_SCRIPT_PRESENCE_JOIN                                                            \
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])\n"                              \
    "local before = redis.call('ZCARD', KEYS[1])\n"                                           \
    "redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])\n"                                         \
    "redis.call('ZADD', KEYS[2], 'GT', ARGV[4], ARGV[2])\n"                                   \
    "if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[3]) end\n"               \
    "if before == 0 then\n"                                                                   \
    "  local f = {type='user_joined', room=ARGV[6], user=ARGV[2], ts=tonumber(ARGV[5])}\n"    \
    "  if ARGV[3] ~= '' then f.name = ARGV[3] end\n"                                          \
    "  redis.call('PUBLISH', KEYS[4], '- 0 ' .. ARGV[7] .. ' ' .. cjson.encode(f))\n"         \
    "end\n"                                                                                   \
    "return before\n"

/* KEYS: pu users names ch; ARGV: node user now_ms room */
#define REDIS_SCRIPT_PRESENCE_LEAVE                                                           \
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"                                                  \
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])\n"                              \
    "if redis.call('ZCARD', KEYS[1]) == 0 then\n"                                             \
    "  redis.call('DEL', KEYS[1])\n"                                                          \
    "  redis.call('ZREM', KEYS[2], ARGV[2])\n"                                                \
    "  redis.call('HDEL', KEYS[3], ARGV[2])\n"                                                \
    "  local f = {type='user_left', room=ARGV[4], user=ARGV[2], ts=tonumber(ARGV[3])}\n"      \
    "  redis.call('PUBLISH', KEYS[4], '- 0 - ' .. cjson.encode(f))\n"                         \
    "  return 1\n"                                                                            \
    "end\n"                                                                                   \
    "return 0\n"

/* KEYS: users; ARGV: pu_prefix node exp_ms user... */
#define REDIS_SCRIPT_PRESENCE_REFRESH                                                         \
    "for i = 4, #ARGV do\n"                                                                   \
    "  redis.call('ZADD', ARGV[1] .. ARGV[i], ARGV[3], ARGV[2])\n"                            \
    "  redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[i])\n"                                 \
    "end\n"                                                                                   \
    "return #ARGV - 3\n"

/* KEYS: users names ch; ARGV: pu_prefix now_ms room. Expired users leave (user_left once). */
#define REDIS_SCRIPT_PRESENCE_SWEEP                                                           \
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])\n"                    \
    "local n = 0\n"                                                                           \
    "for _, u in ipairs(gone) do\n"                                                           \
    "  local pu = ARGV[1] .. u\n"                                                             \
    "  redis.call('ZREMRANGEBYSCORE', pu, '-inf', ARGV[2])\n"                                 \
    "  local last = redis.call('ZRANGE', pu, -1, -1, 'WITHSCORES')\n"                         \
    "  if #last == 0 then\n"                                                                  \
    "    redis.call('DEL', pu)\n"                                                             \
    "    redis.call('ZREM', KEYS[1], u)\n"                                                    \
    "    redis.call('HDEL', KEYS[2], u)\n"                                                    \
    "    local f = {type='user_left', room=ARGV[3], user=u, ts=tonumber(ARGV[2])}\n"          \
    "    redis.call('PUBLISH', KEYS[3], '- 0 - ' .. cjson.encode(f))\n"                       \
    "    n = n + 1\n"                                                                         \
    "  else\n"                                                                                \
    "    redis.call('ZADD', KEYS[1], last[2], u)\n"                                           \
    "  end\n"                                                                                 \
    "end\n"                                                                                   \
    "return n\n"

/* KEYS: a user channel. Nodes subscribe to a user's channel while the user has connections on
 * them (and Redis drops a dead node's subscriptions with its socket): subscribers > 0 is
 * "online somewhere". Returns {channel, count}. */
#define REDIS_SCRIPT_USER_ONLINE "return redis.call('PUBSUB', 'NUMSUB', KEYS[1])\n"

/* KEYS: users names; ARGV: now_ms. Returns {user, name-or-'', ...} of live users. */
#define REDIS_SCRIPT_PRESENCE_LIST                                                            \
    "local us = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')\n"                      \
    "local out = {}\n"                                                                        \
    "for _, u in ipairs(us) do\n"                                                             \
    "  out[#out + 1] = u\n"                                                                   \
    "  out[#out + 1] = redis.call('HGET', KEYS[2], u) or ''\n"                                \
    "end\n"                                                                                   \
    "return out\n"

#endif
