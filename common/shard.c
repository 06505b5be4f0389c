/*
 * shard — stable name → instance placement; see shard.h. FNV-1a is fixed here on purpose:
 * changing the hash would move every room at once, so it must stay as it is.
 */
#include "shard.h"

#include <stdint.h>

size_t shard_index(const char *name, size_t count)
{
    if (count <= 1)
        return 0;
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)(h % count);
}
