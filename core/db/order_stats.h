/* Read-only order figures for the admin API (blocking; see db.h). */
#ifndef SK_ORDER_STATS_H
#define SK_ORDER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* For each of the n item ids, how many orders of that item are in `status`
 * ("paid", "closed", …) within activity_id; counts[i] for item_ids[i]. */
int sk_store_order_counts(struct sk_db *db, uint64_t activity_id, const char *status, const uint64_t *item_ids,
                          int64_t *counts, size_t n, char *err, size_t errlen);

/* The order statuses, in the order of the counts below. */
#define SK_ORDER_STATUSES 5
extern const char *const sk_order_status_names[SK_ORDER_STATUSES]; /* reserved created paying paid closed */

/* How many orders there are in each status (all activities). */
int sk_store_orders_by_status(struct sk_db *db, int64_t counts[SK_ORDER_STATUSES], char *err, size_t errlen);

#endif
