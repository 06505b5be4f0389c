/*
 * redis_scripts — the Lua scripts that keep a room's offset, epoch, log, presence and read
 * markers consistent (key names: common/redis_names.h). Every script touches the keys of one
 * hash tag only, so it runs on one Redis Cluster slot; keys built from ARGV prefixes share
 * that tag. ARGV "sharded" = "1" selects SPUBLISH (Redis Cluster sharded pub/sub) over PUBLISH.
 *
 * Invariant of the room scripts: seq exists iff epoch exists, and the log never holds an
 * offset above seq. If that breaks (first use, Redis lost the data, or a failover lost
 * acknowledged writes), a new epoch starts: seq restarts at 0 and the old log and read markers
 * go, so an offset is never reissued under an epoch with other content (PROTOCOL.md §2).
 */
#ifndef GATEWAY_REDIS_SCRIPTS_H
#define GATEWAY_REDIS_SCRIPTS_H

#define REDIS_SCRIPT_PUBVERB "local pubverb = (ARGV[#ARGV] == '1') and 'SPUBLISH' or 'PUBLISH'\n"

/* Starts a new epoch `cand` in place (KEYS seq log epoch reads). */
#define REDIS_SCRIPT_NEW_EPOCH_FN                                                             \
    "local function new_epoch(cand)\n"                                                        \
    "  redis.call('SET', KEYS[3], cand)\n"                                                    \
    "  redis.call('SET', KEYS[1], 0)\n"                                                       \
    "  redis.call('DEL', KEYS[2], KEYS[4])\n"                                                 \
    "  return cand\n"                                                                         \
    "end\n"

/* KEYS: seq log epoch reads ch
 * ARGV: head tail sender cand maxlen ttl known known_epoch defer sharded
 * known/known_epoch: the last offset this node delivered for the room, under that epoch: a
 * counter behind it means a failover lost writes members hold, so a new epoch starts.
 * defer = 1: store only and return {offset, epoch, payload} (the bus publishes after WAIT).
 * Returns {offset, epoch}. */
#define REDIS_SCRIPT_PUBLISH                                                                  \
    REDIS_SCRIPT_PUBVERB REDIS_SCRIPT_NEW_EPOCH_FN                                            \
    "local epoch = redis.call('GET', KEYS[3])\n"                                              \
    "local seq = tonumber(redis.call('GET', KEYS[1]))\n"                                      \
    "if (not epoch) or (not seq) or (epoch == ARGV[8] and seq < tonumber(ARGV[7])) then\n"  \
    "  epoch = new_epoch(ARGV[4])\n"                                                          \
    "end\n"                                                                                   \
    "local off = redis.call('INCR', KEYS[1])\n"                                               \
    "local msg = ARGV[1] .. off .. ARGV[2]\n"                                                 \
    "if tonumber(ARGV[5]) > 0 then\n"                                                         \
    "  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], off .. '-0', 'm', msg, 's', ARGV[3])\n" \
    "  redis.call('EXPIRE', KEYS[2], ARGV[6])\n"                                              \
    "end\n"                                                                                   \
    "local payload = epoch .. ' ' .. off .. ' ' .. ARGV[3] .. ' ' .. msg\n"                   \
    "if ARGV[9] == '1' then return {off, epoch, payload} end\n"                               \
    "redis.call(pubverb, KEYS[5], payload)\n"                                                 \
    "return {off, epoch}\n"

/* KEYS: seq log epoch reads; ARGV: cand. A log whose newest entry is above seq is a counter
 * that went backwards: new epoch. Returns {offset, epoch}. */
#define REDIS_SCRIPT_SYNC                                                                     \
    REDIS_SCRIPT_NEW_EPOCH_FN                                                                 \
    "local epoch = redis.call('GET', KEYS[3])\n"                                              \
    "local seq = tonumber(redis.call('GET', KEYS[1]))\n"                                      \
    "local fresh = (not epoch) or (not seq)\n"                                                \
    "if not fresh then\n"                                                                     \
    "  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"                  \
    "  if #top > 0 and tonumber(string.match(top[1][1], '^(%d+)')) > seq then fresh = true end\n" \
    "end\n"                                                                                   \
    "if fresh then epoch = new_epoch(ARGV[1]); seq = 0 end\n"                                 \
    "return {seq, epoch}\n"

/* KEYS: seq log epoch reads; ARGV: old_epoch cand. Replaces the epoch only while it is still
 * the old one (another node may have rotated first). Returns {offset, epoch}. */
#define REDIS_SCRIPT_ROTATE                                                                   \
    REDIS_SCRIPT_NEW_EPOCH_FN                                                                 \
    "local epoch = redis.call('GET', KEYS[3])\n"                                              \
    "if (not epoch) or epoch == ARGV[1] then epoch = new_epoch(ARGV[2]) end\n"                \
    "return {tonumber(redis.call('GET', KEYS[1]) or '0'), epoch}\n"

/* Reads the message fields of a stream entry. */
#define REDIS_SCRIPT_ENTRY_FN                                                                 \
    "local function entry(e)\n"                                                               \
    "  local m, s = '', ''\n"                                                                 \
    "  for i = 1, #e[2], 2 do\n"                                                              \
    "    if e[2][i] == 'm' then m = e[2][i + 1] elseif e[2][i] == 's' then s = e[2][i + 1] end\n" \
    "  end\n"                                                                                 \
    "  return m, s\n"                                                                         \
    "end\n"

/* The head of a frames reply: {more, epoch, last offset} read in the same script as the
 * frames (KEYS log epoch seq), so the room can tell a log of another epoch or behind. */
#define REDIS_SCRIPT_HEAD_FN                                                                  \
    "local function head()\n"                                                                 \
    "  return {0, redis.call('GET', KEYS[2]) or '', tonumber(redis.call('GET', KEYS[3]) or '0')}\n" \
    "end\n"

/* KEYS: log epoch seq; ARGV: from to|'+' budget_bytes max_count. Offsets from..to in order,
 * stopping once budget_bytes of messages are out (at least one).
 * Returns {more, epoch, last, id, m, s, ...}. */
#define REDIS_SCRIPT_FETCH                                                                    \
    REDIS_SCRIPT_ENTRY_FN REDIS_SCRIPT_HEAD_FN                                                \
    "local out = head()\n"                                                                    \
    "local bytes, n = 0, 0\n"                                                                 \
    "local lo = ARGV[1] .. '-0'\n"                                                            \
    "local hi = (ARGV[2] == '+') and '+' or (ARGV[2] .. '-0')\n"                              \
    "local budget, maxn = tonumber(ARGV[3]), tonumber(ARGV[4])\n"                             \
    "while n < maxn do\n"                                                                     \
    "  local batch = redis.call('XRANGE', KEYS[1], lo, hi, 'COUNT', math.min(64, maxn - n))\n" \
    "  if #batch == 0 then break end\n"                                                       \
    "  for _, e in ipairs(batch) do\n"                                                        \
    "    local m, s = entry(e)\n"                                                             \
    "    if n > 0 and bytes + #m > budget then out[1] = 1; return out end\n"                  \
    "    bytes = bytes + #m; n = n + 1\n"                                                     \
    "    out[#out + 1] = e[1]; out[#out + 1] = m; out[#out + 1] = s\n"                        \
    "    lo = '(' .. e[1]\n"                                                                  \
    "  end\n"                                                                                 \
    "end\n"                                                                                   \
    "return out\n"

/* KEYS: log epoch seq; ARGV: hi ('+' or "<offset>-0") limit budget_bytes. The newest `limit`
 * messages at or below hi that fit in budget_bytes (at least one), oldest first; more = 1
 * when the budget stopped it. Returns {more, epoch, last, id, m, s, ...}. */
#define REDIS_SCRIPT_HISTORY                                                                  \
    REDIS_SCRIPT_ENTRY_FN REDIS_SCRIPT_HEAD_FN                                                \
    "local rev = {}\n"                                                                        \
    "local bytes, more = 0, 0\n"                                                              \
    "local hi, left, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"               \
    "while left > 0 do\n"                                                                     \
    "  local batch = redis.call('XREVRANGE', KEYS[1], hi, '-', 'COUNT', math.min(64, left))\n" \
    "  if #batch == 0 then break end\n"                                                       \
    "  for _, e in ipairs(batch) do\n"                                                        \
    "    local m, s = entry(e)\n"                                                             \
    "    if #rev > 0 and bytes + #m > budget then more = 1; left = 0; break end\n"            \
    "    bytes = bytes + #m; left = left - 1\n"                                               \
    "    rev[#rev + 1] = {e[1], m, s}\n"                                                      \
    "    hi = '(' .. e[1]\n"                                                                  \
    "  end\n"                                                                                 \
    "end\n"                                                                                   \
    "local out = head()\n"                                                                    \
    "out[1] = more\n"                                                                         \
    "for i = #rev, 1, -1 do\n"                                                                \
    "  out[#out + 1] = rev[i][1]; out[#out + 1] = rev[i][2]; out[#out + 1] = rev[i][3]\n"     \
    "end\n"                                                                                   \
    "return out\n"

/*
 * Presence of room R: P:{R}:users (zset user → when first joined), P:{R}:names (hash), per
 * user P:{R}:pu:<user> (set of nodes holding that user in R) and per node P:{R}:nu:<node>
 * (set of that node's users in R). user_joined / user_left are published as ephemeral frames
 * ("- 0 <sender> <json>", JSON built by Redis's cjson) exactly when a user's first node
 * arrives / last node goes, inside the same script, so two nodes never both announce (or both
 * miss) it. A node that dies is cleaned up by another (NODE_* below).
 */

/* KEYS: pu users names ch nu; ARGV: node user name now_ms room sender sharded */
#define REDIS_SCRIPT_PRESENCE_JOIN                                                            \
    REDIS_SCRIPT_PUBVERB                                                                      \
    "local added = redis.call('SADD', KEYS[1], ARGV[1])\n"                                    \
    "redis.call('SADD', KEYS[5], ARGV[2])\n"                                                  \
    "if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[3]) end\n"               \
    "local n = redis.call('SCARD', KEYS[1])\n"                                                \
    "if added == 1 and n == 1 then\n"                                                         \
    "  redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[2])\n"                                 \
    "  local f = {type='user_joined', room=ARGV[5], user=ARGV[2], ts=tonumber(ARGV[4])}\n"    \
    "  if ARGV[3] ~= '' then f.name = ARGV[3] end\n"                                          \
    "  redis.call(pubverb, KEYS[4], '- 0 ' .. ARGV[6] .. ' ' .. cjson.encode(f))\n"           \
    "end\n"                                                                                   \
    "return n\n"

/* Removes user from room when its last node goes (KEYS users names ch; pu the user's set). */
#define REDIS_SCRIPT_USER_GONE_FN                                                             \
    "local function user_gone(pu, user, now, room)\n"                                         \
    "  if redis.call('SCARD', pu) > 0 then return 0 end\n"                                    \
    "  redis.call('DEL', pu)\n"                                                               \
    "  redis.call('ZREM', KEYS[2], user)\n"                                                   \
    "  redis.call('HDEL', KEYS[3], user)\n"                                                   \
    "  local f = {type='user_left', room=room, user=user, ts=tonumber(now)}\n"                \
    "  redis.call(pubverb, KEYS[4], '- 0 - ' .. cjson.encode(f))\n"                           \
    "  return 1\n"                                                                            \
    "end\n"

/* KEYS: pu users names ch nu; ARGV: node user now_ms room sharded */
#define REDIS_SCRIPT_PRESENCE_LEAVE                                                           \
    REDIS_SCRIPT_PUBVERB REDIS_SCRIPT_USER_GONE_FN                                            \
    "redis.call('SREM', KEYS[5], ARGV[2])\n"                                                  \
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end\n"                        \
    "return user_gone(KEYS[1], ARGV[2], ARGV[3], ARGV[4])\n"

/* KEYS: users names. Returns {user, name-or-'', ...}. */
#define REDIS_SCRIPT_PRESENCE_LIST                                                            \
    "local us = redis.call('ZRANGE', KEYS[1], 0, -1)\n"                                       \
    "local out = {}\n"                                                                        \
    "for _, u in ipairs(us) do\n"                                                             \
    "  out[#out + 1] = u\n"                                                                   \
    "  out[#out + 1] = redis.call('HGET', KEYS[2], u) or ''\n"                                \
    "end\n"                                                                                   \
    "return out\n"

/* KEYS: nu users names ch; ARGV: dead_node pu_prefix now_ms room sharded. Every user the dead
 * node held in the room loses that node; those with no node left leave (user_left). */
#define REDIS_SCRIPT_ROOM_FORGET_NODE                                                         \
    REDIS_SCRIPT_PUBVERB REDIS_SCRIPT_USER_GONE_FN                                            \
    "local n = 0\n"                                                                           \
    "for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"                                \
    "  local pu = ARGV[2] .. u\n"                                                             \
    "  redis.call('SREM', pu, ARGV[1])\n"                                                     \
    "  n = n + user_gone(pu, u, ARGV[3], ARGV[4])\n"                                          \
    "end\n"                                                                                   \
    "redis.call('DEL', KEYS[1])\n"                                                            \
    "return n\n"

/* Node liveness (tag {@nodes}). KEYS: live; ARGV: node lifetime_ms. Refreshes this node's
 * deadline on Redis's clock (no skew between nodes) and returns the nodes past theirs. */
#define REDIS_SCRIPT_NODE_REFRESH                                                             \
    "local t = redis.call('TIME')\n"                                                          \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                 \
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"                         \
    "return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"

/* KEYS: live claim rooms-of-dead (rooms key on its own tag: only used by op 'rooms')
 * ARGV: dead_node claimer op. op 'claim': 1 when this node now cleans dead_node up (a claim
 * that expires in 30 s, so a cleaner that dies is replaced); 'done': forget dead_node. */
#define REDIS_SCRIPT_NODE_DEAD                                                                \
    "if ARGV[3] == 'claim' then\n"                                                            \
    "  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"                     \
    "  if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', 30000) then return 1 end\n"         \
    "  return 0\n"                                                                            \
    "end\n"                                                                                   \
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"                                                  \
    "redis.call('DEL', KEYS[2])\n"                                                            \
    "return 1\n"

/* KEYS: a channel; ARGV: payload sharded. Publishes; returns the number of receivers. */
#define REDIS_SCRIPT_SEND REDIS_SCRIPT_PUBVERB "return redis.call(pubverb, KEYS[1], ARGV[1])\n"

/* KEYS: a user channel, or a node's rooms set; ARGV: op [room] sharded.
 * op 'online': subscribers of the user channel (nodes subscribe while the user has
 * connections, and Redis drops a dead node's subscriptions with its socket); 'add'/'rem': a
 * node's room set; 'list': its members; 'del': drop it. */
#define REDIS_SCRIPT_ONLINE                                                                   \
    "local op = ARGV[1]\n"                                                                    \
    "if op == 'online' then\n"                                                                \
    "  local r = redis.call('PUBSUB', (ARGV[2] == '1') and 'SHARDNUMSUB' or 'NUMSUB', KEYS[1])\n" \
    "  return tonumber(r[2])\n"                                                               \
    "elseif op == 'add' then return redis.call('SADD', KEYS[1], ARGV[2])\n"                   \
    "elseif op == 'rem' then return redis.call('SREM', KEYS[1], ARGV[2])\n"                   \
    "elseif op == 'list' then return redis.call('SMEMBERS', KEYS[1])\n"                       \
    "end\n"                                                                                   \
    "return redis.call('DEL', KEYS[1])\n"

/* KEYS: reads seq; ARGV: user offset. The user's marker moves to min(offset, last offset)
 * when that is ahead of it, never back (PROTOCOL.md §8). Returns {marker, last, moved}. */
#define REDIS_SCRIPT_READ                                                                     \
    "local last = tonumber(redis.call('GET', KEYS[2]) or '0')\n"                              \
    "local want = math.min(tonumber(ARGV[2]), last)\n"                                        \
    "local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"                     \
    "if want > old then\n"                                                                    \
    "  redis.call('HSET', KEYS[1], ARGV[1], want)\n"                                          \
    "  return {want, last, 1}\n"                                                              \
    "end\n"                                                                                   \
    "return {old, last, 0}\n"

/* KEYS: reads seq epoch; ARGV: user. Returns {marker, last, epoch}. */
#define REDIS_SCRIPT_READS                                                                    \
    "return {tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0'),\n"                        \
    "        tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('GET', KEYS[3]) or ''}\n"

#endif
