/*
 * fuzz_check — what every harness in tests/fuzz/ uses to state an invariant. A broken
 * invariant aborts, which libFuzzer treats like a crash: it stops, prints the stack and saves
 * the input as crash-<sha1>, so a wrong answer is caught as surely as a memory error.
 */
#ifndef CHAT_FUZZ_CHECK_H
#define CHAT_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(#cond, __FILE__, __LINE__);                                                  \
    } while (0)

/* Prints the broken invariant and aborts. */
_Noreturn void fuzz_fail(const char *what, const char *file, int line);

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF). Written here from RFC 3629 §4, independently of common/protocol.c, so it can
 * judge that code rather than repeat it. */
bool fuzz_utf8_valid(const char *s, size_t len);

#endif
