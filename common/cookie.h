/*
 * cookie — finds one cookie by name in a `Cookie` request header (RFC 6265 §4.2, §5.4).
 *
 * Pure. The header is a list of `name=value` pairs separated by `;` and optional whitespace; a
 * cookie matches only when its name is exactly the one asked for (so `csrftoken=` and
 * `mytoken=` are not `token=`). A value in double quotes is returned without them. Pairs
 * without `=` are skipped, as browsers do.
 */
#ifndef CHAT_COOKIE_H
#define CHAT_COOKIE_H

#include <stddef.h>

/* Copies the value of the first cookie called `name` into out (NUL-terminated). Returns 1 when
 * found, 0 when absent, -1 when found but its value does not fit in outlen bytes. */
int cookie_find(const char *header, const char *name, char *out, size_t outlen);

#endif
