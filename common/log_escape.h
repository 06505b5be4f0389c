/*
 * log_escape — makes a value safe to write on one log line (issue: a JWT `sub` holding ESC,
 * other C0/C1 controls or U+2028 reached the log raw: terminal escapes, forged lines).
 *
 * Pure. Every control character becomes visible text: C0 and DEL as \xNN (\n, \r, \t as
 * themselves escaped), C1 (U+0080..U+009F) and the Unicode line/paragraph separators
 * (U+2028, U+2029) as \u0085 / \u2028 style, bytes that are not valid UTF-8 as \xNN. A
 * backslash is doubled and, for the key=value format, a double quote escaped, so the escaping
 * can be read back unambiguously. Other UTF-8 passes through unchanged.
 */
#ifndef CHAT_LOG_ESCAPE_H
#define CHAT_LOG_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the escaped form of in into out (cap bytes, always NUL-terminated, cut at a whole
 * escape when it does not fit). quote: also escape '"'. Returns the length written. */
size_t log_escape(const char *in, char *out, size_t cap, bool quote);

/* True when in needs no escaping and no quoting for key=value output (no space, quote, '=',
 * backslash or anything log_escape would change). */
bool log_plain(const char *in);

#endif
