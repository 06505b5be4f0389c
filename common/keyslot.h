/*
 * keyslot — Redis Cluster's key → slot mapping (CRC16-CCITT/XMODEM of the key, or of the
 * text inside its first non-empty {hash tag}, modulo 16384), so the gateway routes each
 * room's script and channel to the master that owns them without asking Redis.
 *
 * Pure; checked against the Redis Cluster specification's test vector.
 */
#ifndef CHAT_KEYSLOT_H
#define CHAT_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#define KEYSLOT_COUNT 16384

uint16_t keyslot_crc16(const char *buf, size_t len);
/* The slot of a full key (hash tags honoured). */
uint16_t keyslot_of_key(const char *key, size_t len);
/* The slot of every key whose hash tag is `tag` (e.g. a room name: "chat:{R}:seq"). */
uint16_t keyslot_of_tag(const char *tag);

#endif
