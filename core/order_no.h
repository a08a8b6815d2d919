/*
 * Order numbers: unique across daemons and restarts, and telling nothing about
 * how much has sold. "<ULID>_<item id>": 26 characters of Crockford base32 (48 bits
 * of the millisecond clock, so numbers sort by time, and 80 random bits from the
 * kernel's CSPRNG, so two daemons never need to coordinate and a buyer cannot count
 * orders by comparing numbers), then the item's id in decimal, which tells the
 * daemon where the stock store keeps the order (one item's keys live together).
 * e.g. "01M898EK3QVQG0MF7Y916AQY3V_12" (letters, digits and "_" only, which
 * is what payment gateways such as Alipay accept in a merchant trade number).
 */
#ifndef SK_ORDER_NO_H
#define SK_ORDER_NO_H

#include <stddef.h>
#include <stdint.h>

#define SK_ULID_LEN 26
#define SK_ORDER_NO_MAX 47 /* 26 + '_' + 20 digits */

/* Write a new order number for item_id and a NUL into out (SK_ORDER_NO_MAX + 1
 * bytes). Thread-safe; random bytes are drawn in blocks per thread. SK_ERR only if
 * the kernel refuses randomness. */
int sk_order_no_new(int64_t now_ms, uint64_t item_id, char *out);

/* Check the shape of s (len bytes) and read its item id. SK_OK and *item_id for a
 * well-formed number, SK_ERR (and *item_id untouched) otherwise. */
int sk_order_no_parse(const char *s, size_t len, uint64_t *item_id);

#endif
