/*
 * POST /api/v1/seckill — the hot path. Limits early, cheapest first (body, catalog,
 * window, the local sold-out flag, then the buyer's token) before the one Redis
 * round trip that takes a unit; never blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_api.h"
#include "core/catalog.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/order_no.h"
#include "core/timeutil.h"

/* Outcomes as counted in seckill_reservations_total{outcome=…}. */
enum outcome {
    OUT_RESERVED,
    OUT_SOLD_OUT,
    OUT_SOLD_OUT_LOCAL, /* answered from the sold-out flag, without Redis */
    OUT_LIMIT,
    OUT_NOT_STARTED,
    OUT_ENDED,
    OUT_PAUSED,
    OUT_BAD,
    OUT_ERROR,
    OUT_N
};
static const char *const outcome_names[OUT_N] = {
    "reserved", "sold_out", "sold_out_local", "limit_reached", "not_started", "ended", "paused", "bad_request", "error",
};
static struct sk_metric *outcome_metric[OUT_N];

void sk_client_api_init(struct sk_daemon *d)
{
    (void)d;
    for (int i = 0; i < OUT_N; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_names[i]);
        outcome_metric[i] = sk_metric_counter("seckill_reservations_total", labels, "Reservation attempts by outcome");
    }
}

int64_t sk_client_reserved_total(void)
{
    return outcome_metric[OUT_RESERVED] ? sk_metric_value(outcome_metric[OUT_RESERVED]) : 0;
}

static void count(enum outcome o)
{
    if (outcome_metric[o])
        sk_metric_add(outcome_metric[o], 1);
}

/* What a reservation in flight keeps: ids, not catalog pointers (see catalog.h). */
struct pending {
    struct sk_http_req *req;
    uint64_t activity_id, item_id;
    int64_t expires_at_ms;
    char order_no[SK_ORDER_NO_MAX + 1];
};

static void mark_stock(struct sk_daemon *d, uint64_t item_id, int64_t remaining, int sold_out)
{
    struct sk_catalog_item *ci = sk_catalog_item(sk_catalog_current(d->catalog), item_id);
    if (ci == NULL)
        return;
    atomic_store(&ci->remaining, remaining);
    if (sold_out)
        atomic_store(&ci->sold_out, 1);
}

static void on_reserved(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct pending *p = arg;
    struct sk_http_req *req = p->req;
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    char when[SK_TIME_TEXT_LEN];

    if (status != SK_OK) {
        count(OUT_ERROR);
        sk_http_error(req, 503, "overloaded", "stock store unavailable: %s", err ? err : "no answer");
        goto out;
    }
    switch (reply->outcome) {
    case SK_RESERVED:
        count(OUT_RESERVED);
        mark_stock(lc->d, p->item_id, reply->remaining, reply->remaining <= 0);
        sk_http_respond_json(req, 200,
                             json_pack("{s:s, s:s, s:s, s:I, s:I}", "order_no", p->order_no, "status", "reserved",
                                       "expires_at", sk_time_format(p->expires_at_ms, when), "activity_id",
                                       (json_int_t)p->activity_id, "item_id", (json_int_t)p->item_id));
        break;
    case SK_SOLD_OUT:
        count(OUT_SOLD_OUT);
        mark_stock(lc->d, p->item_id, 0, 1);
        sk_http_error(req, 409, "sold_out", "item %llu is sold out", (unsigned long long)p->item_id);
        break;
    case SK_LIMIT_REACHED:
        count(OUT_LIMIT);
        sk_http_error(req, 409, "limit_reached", "you already hold %u unit%s of item %llu, the limit",
                      reply->user_count, reply->user_count == 1 ? "" : "s", (unsigned long long)p->item_id);
        break;
    case SK_NOT_STARTED:
        count(OUT_NOT_STARTED);
        sk_http_error(req, 409, "not_started", "the sale of item %llu has not started", (unsigned long long)p->item_id);
        break;
    case SK_PAUSED:
        count(OUT_PAUSED);
        sk_http_error(req, 409, "paused", "the sale is paused");
        break;
    case SK_ENDED:
    case SK_NOT_ON_SALE:
    default:
        count(OUT_ENDED);
        sk_http_error(req, 409, "ended", "the sale of item %llu is over", (unsigned long long)p->item_id);
        break;
    }
out:
    free(p);
}

/* {"activity_id": n, "item_id": n} and nothing else; answers 400 itself. */
static int parse_body(struct sk_http_req *req, uint64_t *activity_id, uint64_t *item_id)
{
    json_t *body = sk_http_json_body(req, 0, NULL);
    const char *key;
    json_t *v;
    int rc = SK_ERR;
    if (body == NULL)
        return SK_ERR;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "activity_id") != 0 && strcmp(key, "item_id") != 0) {
            sk_http_error(req, 400, "bad_request", "%s: unknown field", key);
            goto out;
        }
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            sk_http_error(req, 400, "bad_request", "%s: must be a positive integer", key);
            goto out;
        }
    }
    json_t *a = json_object_get(body, "activity_id"), *i = json_object_get(body, "item_id");
    if (a == NULL || i == NULL) {
        sk_http_error(req, 400, "bad_request", "%s: required", a == NULL ? "activity_id" : "item_id");
        goto out;
    }
    *activity_id = (uint64_t)json_integer_value(a);
    *item_id = (uint64_t)json_integer_value(i);
    rc = SK_OK;
out:
    json_decref(body);
    return rc;
}

void sk_client_reserve(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    struct sk_daemon *d = lc->d;
    uint64_t activity_id = 0, item_id = 0;

    if (parse_body(req, &activity_id, &item_id) != SK_OK) {
        count(OUT_BAD);
        return;
    }
    const struct sk_catalog_item *ci = sk_catalog_item(sk_catalog_current(d->catalog), item_id);
    if (ci == NULL || ci->activity->id != activity_id) {
        count(OUT_BAD);
        sk_http_error(req, 404, "not_found", "no item %llu on sale in activity %llu", (unsigned long long)item_id,
                      (unsigned long long)activity_id);
        return;
    }
    int64_t now = sk_now_ms();
    enum sk_activity_state st = sk_catalog_state(ci->activity, now);
    if (st == SK_ACT_PUBLISHED) {
        count(OUT_NOT_STARTED);
        sk_http_error(req, 409, "not_started", "the sale of item %llu has not started", (unsigned long long)item_id);
        return;
    }
    if (st == SK_ACT_ENDED) {
        count(OUT_ENDED);
        sk_http_error(req, 409, "ended", "the sale of item %llu is over", (unsigned long long)item_id);
        return;
    }
    if (atomic_load_explicit(&ci->sold_out, memory_order_relaxed)) {
        count(OUT_SOLD_OUT_LOCAL);
        sk_http_error(req, 409, "sold_out", "item %llu is sold out", (unsigned long long)item_id);
        return;
    }

    /* Only a request that may get a unit pays for the token check: the answers
     * above tell nothing that GET /api/v1/items does not. */
    if (sk_client_authorize(req) != SK_OK) {
        count(OUT_BAD);
        return;
    }
    struct pending *p = malloc(sizeof(*p));
    if (p == NULL || sk_order_no_new(now, item_id, p->order_no) != SK_OK) {
        free(p);
        count(OUT_ERROR);
        sk_http_error(req, 500, "internal", "cannot make an order number");
        return;
    }
    p->req = req;
    p->activity_id = activity_id;
    p->item_id = item_id;
    p->expires_at_ms = now + d->cfg.order_timeout_ms;
    struct sk_reserve_req rr = {
        .activity_id = activity_id,
        .item_id = item_id,
        .user_id = sk_http_user(req),
        .order_no = p->order_no,
        .now_ms = now,
        .expires_at_ms = p->expires_at_ms,
    };
    if (d->stock_ops->reserve(lc->stock_conn, &rr, on_reserved, p) != SK_OK) {
        free(p);
        count(OUT_ERROR);
        sk_http_error(req, 503, "overloaded", "stock store unavailable");
    }
}
