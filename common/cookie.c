/*
 * cookie — see cookie.h. A single left-to-right scan; nothing is allocated.
 */
#include "cookie.h"

#include <string.h>

static int cookie_space(char c)
{
    return c == ' ' || c == '\t';
}

int cookie_find(const char *header, const char *name, char *out, size_t outlen)
{
    size_t name_len = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (cookie_space(*p) || *p == ';')
            p++;
        const char *pair = p;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        p = *end ? end + 1 : end;
        const char *eq = memchr(pair, '=', (size_t)(end - pair));
        if (!eq)
            continue;
        const char *nend = eq;
        while (nend > pair && cookie_space(nend[-1]))
            nend--;
        if ((size_t)(nend - pair) != name_len || memcmp(pair, name, name_len) != 0)
            continue;
        const char *v = eq + 1, *vend = end;
        while (v < vend && cookie_space(*v))
            v++;
        while (vend > v && cookie_space(vend[-1]))
            vend--;
        if (vend - v >= 2 && *v == '"' && vend[-1] == '"') {
            v++;
            vend--;
        }
        size_t n = (size_t)(vend - v);
        if (n + 1 > outlen)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}
