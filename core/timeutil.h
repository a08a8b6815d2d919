/* Time helpers: the wall clock in milliseconds and RFC 3339 UTC text. */
#ifndef SK_TIMEUTIL_H
#define SK_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define SK_TIME_TEXT_LEN 64

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t sk_now_ms(void);
/* Milliseconds from an arbitrary origin (CLOCK_MONOTONIC), for durations. */
int64_t sk_mono_ms(void);

/* Parse "2026-11-25T10:00:00Z", "2026-11-25T10:00:00.123Z" or with a "+08:00"
 * style offset. SK_OK and *out_ms on success; SK_ERR (and *out_ms untouched) on
 * anything else, including out-of-range fields. */
int sk_time_parse(const char *text, int64_t *out_ms);
/* Format as "2026-11-25T10:00:00Z", or with ".123" when ms is not whole seconds,
 * into buf (at least SK_TIME_TEXT_LEN bytes). Returns buf. */
char *sk_time_format(int64_t ms, char *buf);

#endif
