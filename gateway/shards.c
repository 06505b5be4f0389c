/*
 * shards — routes each room and user to its Redis instance (one bus each). Placement is
 * common/shard.c's stable hash of the name, so every node agrees without coordination, and one
 * instance being down affects only the rooms and users placed on it.
 */
#include "gateway.h"

#include "shard.h"

struct bus *shard_bus(const struct gateway *gw, const char *name)
{
    if (gw->bus_count == 0)
        return NULL;
    return gw->buses[shard_index(name, (size_t)gw->bus_count)];
}

void shard_submit(struct gateway *gw, struct bus_cmd *cmd)
{
    struct bus *bus = shard_bus(gw, cmd->room);
    if (bus)
        bus_submit(bus, cmd);
    else
        bus_cmd_discard(cmd); /* shutting down */
}

bool shard_ready(const struct gateway *gw, const char *name)
{
    return bus_ready(shard_bus(gw, name));
}

bool shards_all_ready(const struct gateway *gw)
{
    for (int i = 0; i < gw->bus_count; i++)
        if (!bus_ready(gw->buses[i]))
            return false;
    return gw->bus_count > 0;
}

bool shards_any_ready(const struct gateway *gw)
{
    for (int i = 0; i < gw->bus_count; i++)
        if (bus_ready(gw->buses[i]))
            return true;
    return false;
}

uint64_t shards_reconnects(const struct gateway *gw)
{
    uint64_t n = 0;
    for (int i = 0; i < gw->bus_count; i++)
        n += bus_reconnects(gw->buses[i]);
    return n;
}
