/*
 * Orders in MariaDB: the order writer's batched, idempotent inserts, parked records,
 * and reading one order back. Blocking (see db.h).
 */
#ifndef SK_ORDER_STORE_H
#define SK_ORDER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>

#include "db.h"

#define SK_ORDER_STATUS_LEN 16

/* One order as MariaDB has it. */
struct sk_order {
    char order_no[48];
    uint64_t activity_id, item_id, user_id;
    uint32_t seq;
    char status[SK_ORDER_STATUS_LEN];   /* reserved created paying paid closed */
    int64_t amount_cents;
    int64_t reserved_at_ms, expires_at_ms;
    int64_t paid_at_ms, closed_at_ms;   /* 0 when not */
};

/* What one batch insert did. */
struct sk_order_batch_result {
    size_t inserted;   /* new orders */
    size_t duplicates; /* already there (a redelivery): no effect */
    size_t parked;     /* refused rows and bad records, now in parked_records */
};

/*
 * Insert a batch of reservations as orders in status `created`, idempotently: an
 * order whose order_no (or activity, item, user, seq) is already stored is a
 * duplicate and changes nothing. A row MariaDB refuses for another reason (e.g. an
 * item that does not exist) is parked with its reason, as are the bad records, so
 * that one poisoned record never blocks the rest. All of it in one transaction.
 * SK_ERR (with err) when MariaDB failed: then nothing of the batch is stored and the
 * caller retries the same batch later.
 */
int sk_store_orders_insert(struct sk_db *db, const struct sk_reservation *recs, size_t n,
                           const struct sk_queue_bad_record *bad, size_t n_bad, struct sk_order_batch_result *res,
                           char *err, size_t errlen);

/* Read order `order_no` into *out. SK_OK, SK_STORE_NOT_FOUND, or SK_ERR with err. */
int sk_store_order_get(struct sk_db *db, const char *order_no, struct sk_order *out, char *err, size_t errlen);

/* Orders newest first, optionally of one status and/or activity (0: all). */
int sk_store_orders_list(struct sk_db *db, const char *status, uint64_t activity_id, size_t limit,
                         struct sk_order *out, size_t *n, char *err, size_t errlen);
/* Move an unpaid order's deadline to now (closing it by hand through the closer).
 * SK_OK, SK_STORE_NOT_FOUND, SK_STORE_CONFLICT (paid or closed). */
int sk_store_order_expire_now(struct sk_db *db, const char *order_no, char *err, size_t errlen);

#endif
