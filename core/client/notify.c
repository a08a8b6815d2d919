/*
 * POST /api/v1/pay/notify/{gateway} — the gateway's asynchronous notify. The payment
 * plugin verifies the signature and the app id (CPU only, on this loop); MariaDB
 * then checks the order and the amount and marks it paid exactly once (on libuv's
 * thread pool). Anything wrong changes nothing, is logged, and gets the protocol's
 * "fail" so that the gateway tries again; a repeat of a handled notify gets
 * "success". A payment of an order closed meanwhile is refunded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_api.h"
#include "core/daemon.h"
#include "core/db/payment_store.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/orders/closer.h"

#define WHO "notify"

struct notify {
    uv_work_t work;
    struct sk_http_req *req;
    struct sk_daemon *d;
    struct sk_pay_notify n;
    char *raw;                  /* the body, for audits (owned) */
    int rc;
    enum sk_paid_result result;
    char refund_no[64];
    int64_t refund_cents;
    char err[SK_ERRLEN];
};

static void answer(struct sk_http_req *req, const struct sk_payment_ops *ops, int ok)
{
    const char *body = ok ? ops->notify_ok : ops->notify_fail;
    sk_http_respond(req, ok ? 200 : 400, ops->notify_content_type, body, strlen(body));
}

static void paid_work(uv_work_t *w)
{
    struct notify *q = w->data;
    struct sk_db *db = sk_db_pool_get(&q->d->pool, q->err, sizeof(q->err));
    q->rc = SK_ERR;
    if (db == NULL)
        return;
    q->rc = sk_store_payment_paid(db, q->d->payment.desc->name, q->n.order_no, q->n.trade_no, q->n.amount_cents,
                                  q->raw, &q->result, q->refund_no, &q->refund_cents, q->err, sizeof(q->err));
    sk_db_pool_put(&q->d->pool, db);
}

static void on_refunded(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    char *order_no = arg;
    (void)res;
    /* Recorded as pending before; the closer marks it done (or retries it). */
    if (status != SK_OK)
        sk_warn(WHO, "order %s: refund of the late payment not made yet (retried): %s", order_no,
                err ? err : "failed");
    free(order_no);
}

static void after_paid(uv_work_t *w, int status)
{
    struct notify *q = w->data;
    struct sk_loop_ctx *lc = sk_http_loop_data(q->req);
    const struct sk_payment_ops *ops = q->d->pay_ops;
    if (status != 0 || q->rc != SK_OK) {
        sk_warn(WHO, "order %s: cannot record the payment now (the gateway will send it again): %s", q->n.order_no,
                q->err);
        answer(q->req, ops, 0);
        goto out;
    }
    switch (q->result) {
    case SK_PAID_NOW:
        sk_info(WHO, "order %s paid (trade %s)", q->n.order_no, q->n.trade_no);
        answer(q->req, ops, 1);
        break;
    case SK_PAID_ALREADY:
    case SK_PAID_NOT_PAID:
        answer(q->req, ops, 1);
        break;
    case SK_PAID_LATE: {
        sk_warn(WHO, "order %s was paid after it was closed: refunding %s", q->n.order_no, q->refund_no);
        answer(q->req, ops, 1);
        char *order_no = strdup(q->n.order_no);
        if (order_no == NULL ||
            ops->refund(lc->pay_conn, q->n.order_no, q->refund_no, q->refund_cents, "paid after the order was closed",
                        on_refunded, order_no) != SK_OK)
            free(order_no); /* the closer makes the pending refund */
        sk_closer_wake(q->d->closer);
        break;
    }
    case SK_PAID_UNKNOWN_ORDER:
        sk_warn(WHO, "notify for unknown order %s ignored", q->n.order_no);
        answer(q->req, ops, 0);
        break;
    case SK_PAID_AMOUNT_MISMATCH:
        sk_err(WHO, "notify for order %s with amount %lld cents, not the order's: ignored", q->n.order_no,
               (long long)q->n.amount_cents);
        answer(q->req, ops, 0);
        break;
    }
out:
    free(q->raw);
    free(q);
}

void sk_client_notify(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const struct sk_payment_ops *ops = lc->d->pay_ops;
    const char *gateway = sk_http_param_str(req, 0);
    char why[SK_ERRLEN];
    size_t len = 0;

    if (ops == NULL || strcmp(gateway, lc->d->payment.desc->name) != 0) {
        sk_http_error(req, 404, "not_found", "no payment gateway \"%s\" here", gateway);
        return;
    }
    const char *body = sk_http_body(req, &len);
    const char *ctype = sk_http_header(req, "content-type");
    struct notify *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        answer(req, ops, 0);
        return;
    }
    if (ops->verify_notify(lc->d->payment.instance, ctype ? ctype : "", body, len, &q->n, why) != SK_OK) {
        sk_warn(WHO, "notify refused (nothing changed): %s", why);
        answer(req, ops, 0);
        free(q);
        return;
    }
    if (q->n.status != SK_TRADE_PAID) {
        /* WAIT_BUYER_PAY, TRADE_CLOSED: nothing to do, and nothing to send again */
        answer(req, ops, 1);
        free(q);
        return;
    }
    q->req = req;
    q->d = lc->d;
    q->raw = strndup(body, len);
    q->work.data = q;
    if (q->raw == NULL || uv_queue_work(sk_http_loop(req), &q->work, paid_work, after_paid) != 0) {
        answer(req, ops, 0);
        free(q->raw);
        free(q);
    }
}
