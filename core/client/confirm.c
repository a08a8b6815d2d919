/*
 * POST /api/v1/orders/{order_no}/confirm with Idempotency-Key — the buyer's own
 * `created` order goes to `paying`: one trade per order at the gateway, the same
 * answer for the same key. MariaDB work runs on libuv's thread pool and the trade
 * is created by the payment plugin on this loop, so the loop never blocks:
 *   begin (pool) → create (plugin) → finish or abort (pool) → answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_api.h"
#include "core/catalog.h"
#include "core/daemon.h"
#include "core/db/payment_store.h"
#include "core/log.h"
#include "core/order_no.h"
#include "core/timeutil.h"

#define KEY_MAX 100 /* stored with the buyer's id in front, in 128 bytes */

struct confirm {
    uv_work_t work;
    struct sk_http_req *req;
    struct sk_daemon *d;
    uint64_t user_id, item_id;
    char order_no[SK_ORDER_NO_MAX + 1];
    char key[KEY_MAX + 1];
    struct sk_confirm c;                 /* from begin */
    char trade_no[64];
    char *pay_url, *qr_code;             /* from the gateway (owned) */
    int rc;                              /* of the last pool step */
    char err[SK_ERRLEN];
};

static void confirm_free(struct confirm *q)
{
    free(q->pay_url);
    free(q->qr_code);
    free(q);
}

static void respond_paying(struct confirm *q, const char *pay_url, const char *qr_code)
{
    json_t *doc = json_pack("{s:s, s:s}", "order_no", q->order_no, "status", "paying");
    if (pay_url && *pay_url)
        json_object_set_new(doc, "pay_url", json_string(pay_url));
    if (qr_code && *qr_code)
        json_object_set_new(doc, "qr_code", json_string(qr_code));
    sk_http_respond_json(q->req, 200, doc);
}

static void finish_work(uv_work_t *w)
{
    struct confirm *q = w->data;
    struct sk_db *db = sk_db_pool_get(&q->d->pool, q->err, sizeof(q->err));
    q->rc = SK_ERR;
    if (db == NULL)
        return;
    q->rc = sk_store_confirm_finish(db, q->order_no, q->trade_no, q->pay_url, q->qr_code, q->err, sizeof(q->err));
    sk_db_pool_put(&q->d->pool, db);
}

static void after_finish(uv_work_t *w, int status)
{
    struct confirm *q = w->data;
    if (status == 0 && q->rc == SK_OK) {
        sk_info("confirm", "order %s: trade created, paying", q->order_no);
        respond_paying(q, q->pay_url, q->qr_code);
    } else if (status == 0 && q->rc == SK_STORE_CONFLICT) {
        /* the closer took it meanwhile; it closes the trade at the gateway too */
        sk_http_error(q->req, 409, "conflict", "%s", q->err);
    } else {
        /* The trade exists at the gateway; a retry creates it again idempotently. */
        sk_http_error(q->req, 500, "internal", "the trade was created but not recorded: %s; retry", q->err);
    }
    confirm_free(q);
}

static void abort_work(uv_work_t *w)
{
    struct confirm *q = w->data;
    char err[SK_ERRLEN];
    struct sk_db *db = sk_db_pool_get(&q->d->pool, err, sizeof(err));
    if (db == NULL)
        return; /* the stale row is redone by a confirm after a few seconds */
    if (sk_store_confirm_abort(db, q->order_no, err, sizeof(err)) != SK_OK)
        sk_warn("confirm", "order %s: %s", q->order_no, err);
    sk_db_pool_put(&q->d->pool, db);
}

static void after_abort(uv_work_t *w, int status)
{
    struct confirm *q = w->data;
    (void)status;
    sk_http_error(q->req, 503, "overloaded", "payment gateway unavailable: %s; retry", q->err);
    confirm_free(q);
}

static void on_created(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    struct confirm *q = arg;
    uv_loop_t *loop = sk_http_loop(q->req);
    int queued;
    if (status != SK_OK) {
        snprintf(q->err, sizeof(q->err), "%s", err ? err : "failed");
        queued = uv_queue_work(loop, &q->work, abort_work, after_abort);
    } else {
        snprintf(q->trade_no, sizeof(q->trade_no), "%s", res->trade_no ? res->trade_no : "");
        q->pay_url = res->pay_url ? strdup(res->pay_url) : NULL;
        q->qr_code = res->qr_code ? strdup(res->qr_code) : NULL;
        queued = uv_queue_work(loop, &q->work, finish_work, after_finish);
    }
    if (queued != 0) {
        sk_http_error(q->req, 503, "overloaded", "cannot queue the confirm");
        confirm_free(q);
    }
}

/* Begin found no order in MariaDB: is it still on its way there? */
static void on_reservation(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct confirm *q = arg;
    (void)err;
    if (status == SK_OK && reply->order != NULL && reply->order->user_id == q->user_id)
        sk_http_error(q->req, 409, "conflict", "order %s is still being recorded; retry in a moment", q->order_no);
    else
        sk_http_error(q->req, 404, "not_found", "no order %s of yours", q->order_no);
    confirm_free(q);
}

static void begin_work(uv_work_t *w)
{
    struct confirm *q = w->data;
    struct sk_db *db = sk_db_pool_get(&q->d->pool, q->err, sizeof(q->err));
    q->rc = SK_ERR;
    if (db == NULL)
        return;
    q->rc = sk_store_confirm_begin(db, q->order_no, q->user_id, q->d->payment.desc->name, q->key, sk_now_ms(),
                                   &q->c, q->err, sizeof(q->err));
    sk_db_pool_put(&q->d->pool, db);
}

static void after_begin(uv_work_t *w, int status)
{
    struct confirm *q = w->data;
    struct sk_loop_ctx *lc = sk_http_loop_data(q->req);
    if (status != 0 || q->rc != SK_OK) {
        sk_http_error(q->req, 500, "internal", "%s", q->err);
        goto done;
    }
    switch (q->c.state) {
    case SK_CONFIRM_DONE:
        respond_paying(q, q->c.pay_url, q->c.qr_code);
        goto done;
    case SK_CONFIRM_IN_PROGRESS:
        sk_http_error(q->req, 409, "conflict", "a confirm of order %s is in progress; retry in a moment", q->order_no);
        goto done;
    case SK_CONFIRM_PAID:
        sk_http_error(q->req, 409, "conflict", "order %s is already paid", q->order_no);
        goto done;
    case SK_CONFIRM_CLOSED:
        sk_http_error(q->req, 409, "conflict", "order %s is closed", q->order_no);
        goto done;
    case SK_CONFIRM_KEY_REUSED:
        sk_http_error(q->req, 409, "conflict", "this Idempotency-Key was used for another order");
        goto done;
    case SK_CONFIRM_EXPIRED:
        sk_http_error(q->req, 409, "conflict", "order %s is past its payment deadline", q->order_no);
        goto done;
    case SK_CONFIRM_NOT_FOUND:
        if (lc->d->stock_ops->get_order(lc->stock_conn, q->item_id, q->order_no, on_reservation, q) == SK_OK)
            return;
        sk_http_error(q->req, 404, "not_found", "no order %s of yours", q->order_no);
        goto done;
    case SK_CONFIRM_START:
        break;
    }
    /* The trade's subject: the item's title when the catalog still has it. */
    const struct sk_catalog_item *ci = sk_catalog_item(sk_catalog_current(lc->d->catalog), q->item_id);
    struct sk_pay_trade trade = {
        .order_no = q->order_no,
        .amount_cents = q->c.order.amount_cents,
        .subject = ci ? ci->item.title : "seckill order",
        .expires_at_ms = q->c.order.expires_at_ms,
    };
    if (lc->d->pay_ops->create(lc->pay_conn, &trade, on_created, q) == SK_OK)
        return;
    snprintf(q->err, sizeof(q->err), "payment plugin refused the trade");
    if (uv_queue_work(sk_http_loop(q->req), &q->work, abort_work, after_abort) == 0)
        return;
    sk_http_error(q->req, 503, "overloaded", "payment gateway unavailable");
done:
    confirm_free(q);
}

void sk_client_confirm(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const char *order_no = sk_http_param_str(req, 0);
    const char *key = sk_http_header(req, "idempotency-key");
    size_t len = strlen(order_no);
    uint64_t item_id = 0;

    if (lc->d->pay_ops == NULL) {
        sk_http_error(req, 503, "overloaded", "payment is not configured on this daemon");
        return;
    }
    if (sk_order_no_parse(order_no, len, &item_id) != SK_OK) {
        sk_http_error(req, 404, "not_found", "no such order");
        return;
    }
    if (key == NULL || key[0] == '\0' || strlen(key) > KEY_MAX) {
        sk_http_error(req, 400, "bad_request", "Idempotency-Key: required, 1 to %d bytes", KEY_MAX);
        return;
    }
    for (const char *k = key; *k; k++) {
        if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e) {
            sk_http_error(req, 400, "bad_request", "Idempotency-Key: printable ASCII only");
            return;
        }
    }
    struct confirm *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        sk_http_error(req, 500, "internal", "out of memory");
        return;
    }
    q->req = req;
    q->d = lc->d;
    q->user_id = sk_http_user(req);
    q->item_id = item_id;
    memcpy(q->order_no, order_no, len + 1);
    snprintf(q->key, sizeof(q->key), "%s", key);
    q->work.data = q;
    if (uv_queue_work(sk_http_loop(req), &q->work, begin_work, after_begin) != 0) {
        confirm_free(q);
        sk_http_error(req, 503, "overloaded", "cannot queue the confirm");
    }
}
