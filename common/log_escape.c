/*
 * log_escape — see log_escape.h. One pass; UTF-8 sequences are validated just enough to tell
 * the characters that matter (C1, U+2028/9) from ordinary text and broken bytes.
 */
#include "log_escape.h"

#include <stdio.h>
#include <string.h>

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                          : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xE0 && s[1] < 0xA0) || (n == 3 && c == 0xED && s[1] >= 0xA0) ||
        (n == 4 && c == 0xF0 && s[1] < 0x90) || (n == 4 && c == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

/* The escape for the character at s (of length *n, set here), or NULL when it passes as is;
 * buf holds the text of a numeric escape. */
static const char *escape_of(const unsigned char *s, size_t *n, bool quote, char buf[8])
{
    size_t len = utf8_len(s);
    *n = len ? len : 1;
    if (!len) {
        snprintf(buf, 8, "\\x%02X", s[0]);
        return buf;
    }
    if (len == 1) {
        switch (s[0]) {
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        case '"': return quote ? "\\\"" : NULL;
        }
        if (s[0] < 0x20 || s[0] == 0x7F) {
            snprintf(buf, 8, "\\x%02X", s[0]);
            return buf;
        }
        return NULL;
    }
    if (len == 2 && s[0] == 0xC2 && s[1] < 0xA0) {
        snprintf(buf, 8, "\\u%04X", s[1]);
        return buf;
    }
    if (len == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return s[2] == 0xA8 ? "\\u2028" : "\\u2029";
    return NULL;
}

size_t log_escape(const char *in, char *out, size_t cap, bool quote)
{
    size_t pos = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *s = (const unsigned char *)in; *s;) {
        char buf[8];
        size_t n;
        const char *esc = escape_of(s, &n, quote, buf);
        const char *piece = esc ? esc : (const char *)s;
        size_t plen = esc ? strlen(esc) : n;
        if (pos + plen + 1 > cap)
            break;
        memcpy(out + pos, piece, plen);
        pos += plen;
        s += n;
    }
    out[pos] = '\0';
    return pos;
}

bool log_plain(const char *in)
{
    if (!*in)
        return false;
    for (const unsigned char *s = (const unsigned char *)in; *s;) {
        char buf[8];
        size_t n;
        if (*s == ' ' || *s == '=' || escape_of(s, &n, true, buf))
            return false;
        s += n;
    }
    return true;
}
