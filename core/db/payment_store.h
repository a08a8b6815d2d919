/*
 * The paying side of an order's life in MariaDB: confirm (one trade per order, one
 * answer per Idempotency-Key), the gateway's notify (paid exactly once; a payment of a
 * closed order becomes a refund to make), closing unpaid orders on time, returning
 * their units, and the reconciliation lists of the closer. Blocking (see db.h); every
 * state change is a compare-and-set, so several daemons may run the same work.
 */
#ifndef SK_PAYMENT_STORE_H
#define SK_PAYMENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>

#include "db.h"
#include "order_store.h"

#define SK_PAY_INFO_LEN 2048

enum sk_confirm_state {
    SK_CONFIRM_START = 0,      /* a payment row was made: create the trade now */
    SK_CONFIRM_DONE,           /* the trade exists: answer pay_url / qr_code */
    SK_CONFIRM_IN_PROGRESS,    /* another confirm is creating the trade right now */
    SK_CONFIRM_NOT_FOUND,      /* no such order of this buyer in MariaDB */
    SK_CONFIRM_PAID,           /* already paid */
    SK_CONFIRM_CLOSED,         /* closed (timed out or by hand) */
    SK_CONFIRM_KEY_REUSED,     /* the buyer used this Idempotency-Key for another order */
    SK_CONFIRM_EXPIRED,        /* past its deadline: the closer is about to close it */
};

struct sk_confirm {
    enum sk_confirm_state state;
    struct sk_order order;     /* when found */
    char pay_url[SK_PAY_INFO_LEN];
    char qr_code[SK_PAY_INFO_LEN];
};

/* Start (or replay) the confirm of order_no by user_id with idem_key at gateway.
 * Idempotency keys belong to their buyer (two buyers may use the same key). */
int sk_store_confirm_begin(struct sk_db *db, const char *order_no, uint64_t user_id, const char *gateway,
                           const char *idem_key, int64_t now_ms, struct sk_confirm *out, char *err, size_t errlen);
/* The trade was created: record what the buyer needs and make the order `paying`.
 * SK_STORE_CONFLICT (nothing changed) when the order was closed or paid meanwhile. */
int sk_store_confirm_finish(struct sk_db *db, const char *order_no, const char *trade_no, const char *pay_url,
                            const char *qr_code, char *err, size_t errlen);
/* What the buyer needs to pay an order (pay_url / qr_code, SK_PAY_INFO_LEN bytes
 * each, "" when absent). SK_OK, SK_STORE_NOT_FOUND (no trade yet), SK_ERR. */
int sk_store_payment_info(struct sk_db *db, const char *order_no, char *pay_url, char *qr_code, char *err,
                          size_t errlen);
/* The trade could not be created: forget the payment row so the buyer can retry. */
int sk_store_confirm_abort(struct sk_db *db, const char *order_no, char *err, size_t errlen);

enum sk_paid_result {
    SK_PAID_NOW = 0,           /* the order became paid */
    SK_PAID_ALREADY,           /* it was paid before (a repeated notify) */
    SK_PAID_LATE,              /* it was closed: a refund is due (refund_no) */
    SK_PAID_NOT_PAID,          /* the gateway says the trade is not paid: nothing to do */
    SK_PAID_UNKNOWN_ORDER,     /* no such order: nothing changed */
    SK_PAID_AMOUNT_MISMATCH,   /* the paid amount is not the order's: nothing changed */
};

/* Apply a verified payment (from a notify or a query): status and amount checked
 * against the order, paid exactly once. raw is stored for audits (may be NULL).
 * For SK_PAID_LATE, refund_no (64 bytes) and *refund_cents name the refund to make
 * (recorded as pending; made at most once). */
int sk_store_payment_paid(struct sk_db *db, const char *gateway, const char *order_no, const char *trade_no,
                          int64_t amount_cents, const char *raw, enum sk_paid_result *result, char *refund_no,
                          int64_t *refund_cents, char *err, size_t errlen);

/* An order whose time is up, or that waits for its unit to come back. */
struct sk_due_order {
    char order_no[48];
    uint64_t item_id, user_id;
    int has_payment;           /* a trade may exist at the gateway */
};

/* Unpaid orders past their deadline (created or paying, expires_at <= now). */
int sk_store_orders_due(struct sk_db *db, int64_t now_ms, size_t limit, struct sk_due_order *out, size_t *n,
                        char *err, size_t errlen);
/* Orders in `paying` whose payment has not moved for older_ms (a lost notify). */
int sk_store_orders_stale_paying(struct sk_db *db, int64_t now_ms, int64_t older_ms, size_t limit,
                                 struct sk_due_order *out, size_t *n, char *err, size_t errlen);
/* Closed orders whose unit has not been given back yet. */
int sk_store_orders_unreturned(struct sk_db *db, size_t limit, struct sk_due_order *out, size_t *n, char *err,
                               size_t errlen);
/* Close an unpaid order: SK_OK when it was closed now, SK_STORE_CONFLICT when it was
 * paid or closed meanwhile (nothing changed). */
int sk_store_order_close(struct sk_db *db, const char *order_no, const char *reason, char *err, size_t errlen);
/* The closed order's unit is back in the stock store. */
int sk_store_order_unit_returned(struct sk_db *db, const char *order_no, char *err, size_t errlen);

/* A refund still to make at the gateway. */
struct sk_pending_refund {
    char refund_no[64];
    char order_no[48];
    int64_t amount_cents;
};
int sk_store_refunds_pending(struct sk_db *db, size_t limit, struct sk_pending_refund *out, size_t *n, char *err,
                             size_t errlen);
int sk_store_refund_done(struct sk_db *db, const char *refund_no, char *err, size_t errlen);
/* The gateway refused it: tried again a minute later, `failed` after a day. */
int sk_store_refund_failed(struct sk_db *db, const char *refund_no, char *err, size_t errlen);

#endif
