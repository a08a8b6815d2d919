/*
 * Admin: orders by status with their deadlines, and closing one by hand. Closing
 * goes through the closer (the same path as a timeout: the trade is asked and closed
 * at the gateway first, so a payment is never lost, then the unit goes back): the
 * order's deadline is moved to now and the closer is woken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_api.h"
#include "core/daemon.h"
#include "core/db/order_store.h"
#include "core/db/order_stats.h"
#include "core/order_no.h"
#include "core/orders/closer.h"
#include "core/timeutil.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define CLOSE_WAIT_MS 5000

static json_t *order_json(const struct sk_order *o, int64_t now)
{
    char t1[SK_TIME_TEXT_LEN], t2[SK_TIME_TEXT_LEN];
    json_t *doc = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:s}", "order_no", o->order_no, "activity_id",
                            (json_int_t)o->activity_id, "item_id", (json_int_t)o->item_id, "user_id",
                            (json_int_t)o->user_id, "seq", (json_int_t)o->seq, "status", o->status, "amount_cents",
                            (json_int_t)o->amount_cents, "reserved_at", sk_time_format(o->reserved_at_ms, t1),
                            "expires_at", sk_time_format(o->expires_at_ms, t2));
    if (strcmp(o->status, "created") == 0 || strcmp(o->status, "paying") == 0)
        json_object_set_new(doc, "expires_in_s",
                            json_integer(o->expires_at_ms > now ? (o->expires_at_ms - now) / 1000 : 0));
    if (o->paid_at_ms)
        json_object_set_new(doc, "paid_at", json_string(sk_time_format(o->paid_at_ms, t1)));
    if (o->closed_at_ms)
        json_object_set_new(doc, "closed_at", json_string(sk_time_format(o->closed_at_ms, t1)));
    return doc;
}

/* Parse ?status=…&activity_id=…&limit=…; answers 400 itself. */
static int parse_filter(struct sk_http_req *req, char *status, size_t status_len, uint64_t *activity_id,
                        size_t *limit)
{
    const char *q = sk_http_query(req);
    status[0] = '\0';
    *activity_id = 0;
    *limit = LIST_DEFAULT;
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        char part[128];
        if (len >= sizeof(part)) {
            sk_http_error(req, 400, "bad_request", "query parameter too long");
            return SK_ERR;
        }
        memcpy(part, q, len);
        part[len] = '\0';
        char *eq = strchr(part, '=');
        const char *val = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        if (strcmp(part, "status") == 0) {
            int ok = 0;
            for (size_t i = 0; i < SK_ORDER_STATUSES; i++)
                ok |= strcmp(val, sk_order_status_names[i]) == 0;
            if (!ok) {
                sk_http_error(req, 400, "bad_request", "status: one of reserved created paying paid closed");
                return SK_ERR;
            }
            snprintf(status, status_len, "%s", val);
        } else if (strcmp(part, "activity_id") == 0 || strcmp(part, "limit") == 0) {
            char *e;
            unsigned long long v = strtoull(val, &e, 10);
            if (*val == '\0' || *e != '\0' || v == 0 || (strcmp(part, "limit") == 0 && v > LIST_MAX)) {
                sk_http_error(req, 400, "bad_request", "%s: a positive integer%s", part,
                              strcmp(part, "limit") == 0 ? " up to 1000" : "");
                return SK_ERR;
            }
            if (part[0] == 'a')
                *activity_id = v;
            else
                *limit = (size_t)v;
        } else if (part[0] != '\0') {
            sk_http_error(req, 400, "bad_request", "%s: unknown query parameter", part);
            return SK_ERR;
        }
        q = end ? end + 1 : q + len;
    }
    return SK_OK;
}

void sk_admin_list_orders(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    char status[16], err[SK_ERRLEN];
    uint64_t activity_id;
    size_t limit, n = 0;
    if (parse_filter(req, status, sizeof(status), &activity_id, &limit) != SK_OK)
        return;
    struct sk_order *list = calloc(limit, sizeof(*list));
    if (list == NULL) {
        sk_http_error(req, 500, "internal", "out of memory");
        return;
    }
    if (sk_db_ping(&lc->db, err, sizeof(err)) != SK_OK ||
        sk_store_orders_list(&lc->db, status[0] ? status : NULL, activity_id, limit, list, &n, err, sizeof(err)) !=
            SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        free(list);
        return;
    }
    int64_t now = sk_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, order_json(&list[i], now));
    free(list);
    sk_http_respond_json(req, 200, json_pack("{s:o}", "orders", arr));
}

void sk_admin_close_order(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const char *order_no = sk_http_param_str(req, 0);
    char err[SK_ERRLEN];
    struct sk_order o;
    uint64_t item;
    if (sk_order_no_parse(order_no, strlen(order_no), &item) != SK_OK) {
        sk_http_error(req, 404, "not_found", "no such order");
        return;
    }
    if (sk_db_ping(&lc->db, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return;
    }
    int rc = sk_store_order_expire_now(&lc->db, order_no, err, sizeof(err));
    if (rc == SK_STORE_NOT_FOUND) {
        sk_http_error(req, 404, "not_found", "no order %s", order_no);
        return;
    }
    if (rc == SK_STORE_CONFLICT) {
        sk_http_error(req, 409, "conflict", "order %s is already paid or closed", order_no);
        return;
    }
    if (rc != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return;
    }
    sk_closer_wake(lc->d->closer);
    /* The admin thread may wait: answer once the closer has settled the order. */
    for (int waited = 0; waited <= CLOSE_WAIT_MS; waited += 50) {
        if (sk_store_order_get(&lc->db, order_no, &o, err, sizeof(err)) != SK_OK)
            break;
        if (strcmp(o.status, "closed") == 0 || strcmp(o.status, "paid") == 0) {
            sk_http_respond_json(req, 200, order_json(&o, sk_now_ms()));
            return;
        }
        usleep(50 * 1000);
    }
    sk_http_error(req, 503, "overloaded", "order %s is due now; the closer has not settled it yet (gateway away?)",
                  order_no);
}
