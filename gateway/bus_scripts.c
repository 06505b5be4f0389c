/*
 * bus_scripts — the Lua scripts the bus runs (redis_scripts.h), by number. Kept apart so that
 * bus_server.c (which loads them on every new connection) and bus_exec.c (which runs them)
 * both depend on it and not on each other.
 */
#include "bus_internal.h"

#include "redis_scripts.h"

static const char *const script_text[BUS_SCRIPT_COUNT] = {
    [BUS_SCRIPT_PUBLISH] = REDIS_SCRIPT_PUBLISH,
    [BUS_SCRIPT_SYNC] = REDIS_SCRIPT_SYNC,
    [BUS_SCRIPT_ROTATE] = REDIS_SCRIPT_ROTATE,
    [BUS_SCRIPT_FETCH] = REDIS_SCRIPT_FETCH,
    [BUS_SCRIPT_HISTORY] = REDIS_SCRIPT_HISTORY,
    [BUS_SCRIPT_PRESENCE_JOIN] = REDIS_SCRIPT_PRESENCE_JOIN,
    [BUS_SCRIPT_PRESENCE_LEAVE] = REDIS_SCRIPT_PRESENCE_LEAVE,
    [BUS_SCRIPT_PRESENCE_LIST] = REDIS_SCRIPT_PRESENCE_LIST,
    [BUS_SCRIPT_NODE_REFRESH] = REDIS_SCRIPT_NODE_REFRESH,
    [BUS_SCRIPT_NODE_DEAD] = REDIS_SCRIPT_NODE_DEAD,
    [BUS_SCRIPT_ROOM_FORGET_NODE] = REDIS_SCRIPT_ROOM_FORGET_NODE,
    [BUS_SCRIPT_SEND] = REDIS_SCRIPT_SEND,
    [BUS_SCRIPT_ONLINE] = REDIS_SCRIPT_ONLINE,
    [BUS_SCRIPT_READ] = REDIS_SCRIPT_READ,
    [BUS_SCRIPT_READS] = REDIS_SCRIPT_READS,
};

const char *bus_script_text(enum bus_script script)
{
    return script_text[script];
}
