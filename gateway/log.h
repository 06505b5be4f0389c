/*
 * log — one line per event on stderr: `key=value` fields (default) or one JSON object per line
 * (--log-format json). Fields are passed as NULL-terminated key/value string pairs so both
 * formats come from one call. Callers never pass tokens: only ids, names, reasons, addresses.
 * Thread-safe (one fprintf per line; stderr is line-locked by stdio).
 */
#ifndef GATEWAY_LOG_H
#define GATEWAY_LOG_H

#include "config.h"

void log_init(enum config_log_format format, enum config_log_level level, const char *node_id);

/* log_event(CONFIG_LOG_INFO, "conn_open", "conn", id, "user", sub, NULL); NULL values are
 * skipped. */
void log_event(enum config_log_level level, const char *event, ...)
    __attribute__((sentinel));

int log_enabled(enum config_log_level level);

#endif
