/*
 * clock — the two clocks every module reads.
 */
#ifndef GATEWAY_CLOCK_H
#define GATEWAY_CLOCK_H

#include <stdint.h>

int64_t gateway_now_ms(void);  /* wall clock, ms since the epoch */
int64_t gateway_mono_ns(void); /* monotonic, ns */

#endif
