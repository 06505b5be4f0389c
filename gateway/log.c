/*
 * log — structured event lines; see log.h. JSON output is built with cJSON so values are
 * escaped correctly; key=value output quotes values containing spaces, quotes or '=', and
 * every control character is escaped in both formats (log_escape.h).
 * Settings are written once at start-up, before any other thread exists, then only read.
 */
#include "log.h"

#include "log_escape.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum config_log_format log_format = CONFIG_LOG_KV;
static enum config_log_level log_level = CONFIG_LOG_INFO;
static char log_node[64] = "";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum config_log_format format, enum config_log_level level, const char *node_id)
{
    log_format = format;
    log_level = level;
    snprintf(log_node, sizeof(log_node), "%s", node_id ? node_id : "");
}

int log_enabled(enum config_log_level level)
{
    return level >= log_level;
}

/* Writes an ISO-8601 UTC timestamp with milliseconds. */
static void log_timestamp(char *out, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/* Appends ` key=value` to buf, quoting a value that is not plain; every control character is
 * escaped (log_escape.h), so a value can never end the line or drive a terminal. */
static size_t log_append_kv(char *buf, size_t pos, size_t cap, const char *k, const char *v)
{
    if (pos + 1 >= cap)
        return pos;
    int n;
    if (log_plain(v)) {
        n = snprintf(buf + pos, cap - pos, " %s=%s", k, v);
    } else {
        char esc[1024];
        log_escape(v, esc, sizeof(esc), true);
        n = snprintf(buf + pos, cap - pos, " %s=\"%s\"", k, esc);
    }
    if (n > 0)
        pos += (size_t)n;
    return pos < cap ? pos : cap - 1;
}

void log_event(enum config_log_level level, const char *event, ...)
{
    if (!log_enabled(level))
        return;
    char ts[64];
    log_timestamp(ts, sizeof(ts));
    va_list ap;
    va_start(ap, event);
    if (log_format == CONFIG_LOG_JSON) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            va_end(ap);
            return;
        }
        cJSON_AddStringToObject(o, "ts", ts);
        cJSON_AddStringToObject(o, "level", level_names[level]);
        cJSON_AddStringToObject(o, "node", log_node);
        cJSON_AddStringToObject(o, "event", event);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            if (v) {
                /* cJSON escapes C0 controls itself but not DEL, C1 or U+2028/9. */
                char esc[1024];
                log_escape(v, esc, sizeof(esc), false);
                cJSON_AddStringToObject(o, k, esc);
            }
        }
        char *line = cJSON_PrintUnformatted(o);
        if (line)
            fprintf(stderr, "%s\n", line);
        cJSON_free(line);
        cJSON_Delete(o);
    } else {
        char buf[2048];
        size_t pos = 0;
        int n = snprintf(buf, sizeof(buf), "ts=%s level=%s node=%s event=%s", ts,
                         level_names[level], log_node, event);
        pos = n > 0 ? (size_t)n : 0;
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            if (v)
                pos = log_append_kv(buf, pos, sizeof(buf), k, v);
        }
        fprintf(stderr, "%s\n", buf);
    }
    va_end(ap);
}
