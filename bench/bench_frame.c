/*
 * bench_frame — the bench's view of server frames and of its own message texts.
 *
 * Why not cJSON here: every delivery passes through this scanner, and at a few hundred
 * thousand deliveries per second a full parse per frame (tree allocation, number conversion of
 * every field) would make the generator the bottleneck. The scanner walks the top-level object
 * once, records where the few interesting fields are, and skips everything else (nested
 * objects, arrays, escaped strings) without building anything. It does not validate JSON
 * beyond what it needs to find its way; the gateway's own tests check the encoding.
 *
 * Message texts carry a stamp the bench wrote itself, so they never contain characters that
 * JSON would escape, and a stamp can be read straight out of the raw string value.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static const char *bench_skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote; returns the position after the closing quote, or NULL. */
static const char *bench_skip_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* p at the first character of a value; returns the position after it, or NULL. */
static const char *bench_skip_value(const char *p, const char *e)
{
    if (p >= e)
        return NULL;
    if (*p == '"')
        return bench_skip_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            char c = *p;
            if (c == '"') {
                p = bench_skip_string(p, e);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    /* number, true, false, null */
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' &&
           *p != '\r')
        p++;
    return p;
}

bool bench_span_eq(struct bench_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static bool bench_key_is(const char *k, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(k, lit, len) == 0;
}

int bench_frame_scan(const char *buf, size_t len, struct bench_frame *f)
{
    memset(f, 0, sizeof(*f));
    const char *p = buf, *e = buf + len;
    p = bench_skip_ws(p, e);
    if (p >= e || *p != '{')
        return -1;
    p = bench_skip_ws(p + 1, e);
    if (p < e && *p == '}')
        return 0;
    while (p < e) {
        if (*p != '"')
            return -1;
        const char *key = p + 1;
        const char *key_end = bench_skip_string(p, e);
        if (!key_end)
            return -1;
        size_t key_len = (size_t)(key_end - 1 - key);
        p = bench_skip_ws(key_end, e);
        if (p >= e || *p != ':')
            return -1;
        p = bench_skip_ws(p + 1, e);
        const char *value = p;
        p = bench_skip_value(p, e);
        if (!p)
            return -1;
        struct bench_span raw = {value, (size_t)(p - value)};
        struct bench_span str = {NULL, 0};
        if (raw.len >= 2 && *value == '"')
            str = (struct bench_span){value + 1, raw.len - 2};

        switch (key_len) {
        case 2:
            if (bench_key_is(key, key_len, "id", 2))
                f->id = raw;
            break;
        case 4:
            if (bench_key_is(key, key_len, "type", 4))
                f->type = str;
            else if (bench_key_is(key, key_len, "room", 4))
                f->room = str;
            else if (bench_key_is(key, key_len, "text", 4))
                f->text = str;
            else if (bench_key_is(key, key_len, "code", 4))
                f->code = str;
            break;
        case 6:
            if (bench_key_is(key, key_len, "offset", 6) && raw.len > 0 && raw.len <= 20 &&
                *value >= '0' && *value <= '9') {
                uint64_t x = 0;
                size_t i = 0;
                for (; i < raw.len && value[i] >= '0' && value[i] <= '9'; i++)
                    x = x * 10 + (uint64_t)(value[i] - '0');
                if (i == raw.len) {
                    f->offset = x;
                    f->has_offset = true;
                }
            }
            break;
        default:
            break;
        }

        p = bench_skip_ws(p, e);
        if (p >= e)
            return -1;
        if (*p == '}')
            return 0;
        if (*p != ',')
            return -1;
        p = bench_skip_ws(p + 1, e);
    }
    return -1;
}

/* Writes v in decimal at out; returns the digit count. */
static size_t bench_put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t bench_stamp_write(char *out, size_t cap, const char *tag, const struct bench_stamp *s,
                         int payload)
{
    char head[128];
    size_t n = strlen(tag);
    if (n > 32)
        return 0;
    memcpy(head, tag, n);
    head[n++] = '|';
    n += bench_put_u64(head + n, s->publisher);
    head[n++] = '|';
    n += bench_put_u64(head + n, s->seq);
    head[n++] = '|';
    n += bench_put_u64(head + n, (uint64_t)s->sched_ns);
    head[n++] = '|';
    n += bench_put_u64(head + n, (uint64_t)s->send_ns);
    head[n++] = '|';
    head[n++] = s->measured ? 'm' : 'w';
    head[n++] = '|';
    size_t total = payload > 0 && (size_t)payload > n ? (size_t)payload : n;
    if (total > cap)
        return 0;
    memcpy(out, head, n);
    memset(out + n, 'x', total - n);
    return total;
}

/* Reads a decimal field ending in '|'; advances *p past the '|'. */
static int bench_get_u64(const char **p, const char *e, uint64_t *out)
{
    const char *q = *p;
    uint64_t x = 0;
    size_t digits = 0;
    while (q < e && *q >= '0' && *q <= '9' && digits < 20) {
        x = x * 10 + (uint64_t)(*q - '0');
        q++;
        digits++;
    }
    if (digits == 0 || q >= e || *q != '|')
        return -1;
    *out = x;
    *p = q + 1;
    return 0;
}

int bench_stamp_read(const char *text, size_t len, const char *tag, struct bench_stamp *s)
{
    size_t tag_len = strlen(tag);
    if (len < tag_len + 1 || memcmp(text, tag, tag_len) != 0 || text[tag_len] != '|')
        return -1;
    const char *p = text + tag_len + 1, *e = text + len;
    uint64_t publisher, seq, sched, send;
    if (bench_get_u64(&p, e, &publisher) || bench_get_u64(&p, e, &seq) ||
        bench_get_u64(&p, e, &sched) || bench_get_u64(&p, e, &send))
        return -1;
    if (p + 1 >= e || (p[0] != 'm' && p[0] != 'w') || p[1] != '|')
        return -1;
    s->publisher = (uint32_t)publisher;
    s->seq = seq;
    s->sched_ns = (int64_t)sched;
    s->send_ns = (int64_t)send;
    s->measured = p[0] == 'm';
    return 0;
}
