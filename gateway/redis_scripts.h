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

#endif
