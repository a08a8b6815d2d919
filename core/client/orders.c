/*
 * GET /api/v1/orders/{order_no} — the buyer's own order. A reservation is read from
 * the stock store that holds it (the order number names the item, see order_no.h);
 * another buyer's order answers 404, like an unknown one, so numbers cannot be probed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_api.h"
#include "core/daemon.h"
#include "core/order_no.h"
#include "core/timeutil.h"

struct order_lookup {
    struct sk_http_req *req;
    uint64_t user_id;
    char order_no[SK_ORDER_NO_MAX + 1];
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
    q->req = req;
    q->user_id = sk_http_user(req);
    memcpy(q->order_no, order_no, len + 1);
    if (lc->d->stock_ops->get_order(lc->stock_conn, item_id, q->order_no, on_order, q) != SK_OK) {
        free(q);
        sk_http_error(req, 503, "overloaded", "stock store unavailable");
    }
}
