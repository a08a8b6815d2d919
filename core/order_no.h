/*
 * Order numbers: unique across daemons and restarts, and telling nothing about
 * how much has sold. 26 characters of Crockford base32 (a ULID): 48 bits of the
 * millisecond clock (so numbers sort by time) and 80 random bits from the
 * kernel's CSPRNG (getrandom), so two daemons never need to coordinate and a
 * buyer cannot count orders by comparing numbers.
 */
#ifndef SK_ORDER_NO_H
#define SK_ORDER_NO_H

#include <stddef.h>
#include <stdint.h>

#define SK_ORDER_NO_LEN 26

/* Write a new order number and a NUL into out (SK_ORDER_NO_LEN + 1 bytes).
 * Thread-safe; random bytes are drawn in blocks per thread. SK_ERR only if the
 * kernel refuses randomness. */
int sk_order_no_new(int64_t now_ms, char *out);

/* Is s (len bytes) shaped like an order number? (for input checks) */
int sk_order_no_valid(const char *s, size_t len);

#endif
