/*
 * GET /api/v1/orders/{order_no} — the buyer's own order. MariaDB is asked first, on
 * libuv's thread pool (never on the buyer's loop): once the order writer has the
 * order, its status there is the truth. Before that, the reservation is read from the
 * stock store that holds it (the order number names the item, see order_no.h) and is
 * "reserved". Another buyer's order answers 404, like an unknown one, so numbers
 * cannot be probed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_api.h"
#include "core/daemon.h"
#include "core/db/order_store.h"
#include "core/db/payment_store.h"
#include "core/order_no.h"
#include "core/timeutil.h"

struct order_lookup {
    uv_work_t work;
    struct sk_http_req *req;
    struct sk_daemon *d;
    uint64_t user_id, item_id;
    char order_no[SK_ORDER_NO_MAX + 1];
    int db_rc;                   /* SK_OK, SK_STORE_NOT_FOUND or SK_ERR */
    struct sk_order order;       /* when db_rc is SK_OK */
    int has_pay;                 /* pay_url / qr_code read for a confirmed order */
    char pay_url[SK_PAY_INFO_LEN], qr_code[SK_PAY_INFO_LEN];
    char err[SK_ERRLEN];
};

static void on_order(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct order_lookup *q = arg;
    char reserved[SK_TIME_TEXT_LEN], expires[SK_TIME_TEXT_LEN];
    if (status != SK_OK) {
        sk_http_error(q->req, 503, "overloaded", "stock store unavailable: %s", err ? err : "no answer");
    } else if (reply->order == NULL || reply->order->user_id != q->user_id) {
        sk_http_error(q->req, 404, "not_found", "no order %s of yours", q->order_no);
    } else {
        const struct sk_stock_order *o = reply->order;
        sk_http_respond_json(q->req, 200,
                             json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "order_no", q->order_no, "status",
                                       "reserved", "activity_id", (json_int_t)o->activity_id, "item_id",
                                       (json_int_t)o->item_id, "amount_cents", (json_int_t)o->price_cents,
                                       "reserved_at", sk_time_format(o->reserved_at_ms, reserved), "expires_at",
                                       sk_time_format(o->expires_at_ms, expires)));
    }
    free(q);
}

/* On a thread-pool thread: read the order from MariaDB. */
static void lookup_db(uv_work_t *work)
{
    struct order_lookup *q = work->data;
    struct sk_db *db = sk_db_pool_get(&q->d->pool, q->err, sizeof(q->err));
    q->db_rc = SK_ERR;
    if (db == NULL)
        return;
    q->db_rc = sk_store_order_get(db, q->order_no, &q->order, q->err, sizeof(q->err));
    if (q->db_rc == SK_OK && (strcmp(q->order.status, "paying") == 0 || strcmp(q->order.status, "paid") == 0)) {
        char err[SK_ERRLEN];
        q->has_pay = sk_store_payment_info(db, q->order_no, q->pay_url, q->qr_code, err, sizeof(err)) == SK_OK;
    }
    sk_db_pool_put(&q->d->pool, db);
}

static void respond_db_order(struct order_lookup *q)
{
    const struct sk_order *o = &q->order;
    char reserved[SK_TIME_TEXT_LEN], expires[SK_TIME_TEXT_LEN];
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "order_no", o->order_no, "status", o->status,
                            "activity_id", (json_int_t)o->activity_id, "item_id", (json_int_t)o->item_id,
                            "amount_cents", (json_int_t)o->amount_cents, "reserved_at",
                            sk_time_format(o->reserved_at_ms, reserved), "expires_at",
                            sk_time_format(o->expires_at_ms, expires));
    if (o->paid_at_ms)
        json_object_set_new(doc, "paid_at", json_string(sk_time_format(o->paid_at_ms, reserved)));
    if (o->closed_at_ms)
        json_object_set_new(doc, "closed_at", json_string(sk_time_format(o->closed_at_ms, reserved)));
    if (q->has_pay && q->pay_url[0])
        json_object_set_new(doc, "pay_url", json_string(q->pay_url));
    if (q->has_pay && q->qr_code[0])
        json_object_set_new(doc, "qr_code", json_string(q->qr_code));
    sk_http_respond_json(q->req, 200, doc);
}

/* Back on the loop: MariaDB's answer, or the stock store's when it has none. */
static void after_db(uv_work_t *work, int status)
{
    struct order_lookup *q = work->data;
    struct sk_loop_ctx *lc = sk_http_loop_data(q->req);
    if (status == 0 && q->db_rc == SK_OK) {
        if (q->order.user_id == q->user_id)
            respond_db_order(q);
        else
            sk_http_error(q->req, 404, "not_found", "no order %s of yours", q->order_no);
        free(q);
        return;
    }
    /* Not in MariaDB yet (or MariaDB unreachable): the stock store holds the
     * reservation until the order writer has it. */
    if (lc->d->stock_ops->get_order(lc->stock_conn, q->item_id, q->order_no, on_order, q) != SK_OK) {
        sk_http_error(q->req, 503, "overloaded", "stock store unavailable");
        free(q);
    }
}

void sk_client_get_order(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const char *order_no = sk_http_param_str(req, 0);
    size_t len = strlen(order_no);
    uint64_t item_id = 0;
    if (sk_order_no_parse(order_no, len, &item_id) != SK_OK) {
        sk_http_error(req, 404, "not_found", "no order %.*s", len > SK_ORDER_NO_MAX ? SK_ORDER_NO_MAX : (int)len,
                      order_no);
        return;
    }
    struct order_lookup *q = malloc(sizeof(*q));
    if (q == NULL) {
        sk_http_error(req, 500, "internal", "out of memory");
        return;
    }
    memset(q, 0, sizeof(*q));
    q->req = req;
    q->d = lc->d;
    q->user_id = sk_http_user(req);
    q->item_id = item_id;
    memcpy(q->order_no, order_no, len + 1);
    q->work.data = q;
    if (uv_queue_work(sk_http_loop(req), &q->work, lookup_db, after_db) != 0) {
        free(q);
        sk_http_error(req, 503, "overloaded", "cannot queue the order lookup");
    }
}
