/*
 * keyslot — see keyslot.h. Bitwise CRC16 (polynomial 0x1021, init 0): routing is not on the
 * per-delivery path, so a 512-byte table buys nothing here.
 */
#include "keyslot.h"

#include <string.h>

uint16_t keyslot_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

uint16_t keyslot_of_key(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return keyslot_crc16(open + 1, (size_t)(close - open - 1)) & (KEYSLOT_COUNT - 1);
    }
    return keyslot_crc16(key, len) & (KEYSLOT_COUNT - 1);
}

uint16_t keyslot_of_tag(const char *tag)
{
    return keyslot_crc16(tag, strlen(tag)) & (KEYSLOT_COUNT - 1);
}
