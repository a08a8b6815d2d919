/* GET /api/v1/activities, /activities/{id}, /items/{id}: answered from the
 * in-memory catalog (never MariaDB, never Redis). */
#include <string.h>

#include "client_api.h"
#include "core/catalog.h"
#include "core/daemon.h"
#include "core/timeutil.h"

static json_t *time_json(int64_t ms)
{
    char buf[SK_TIME_TEXT_LEN];
    return json_string(sk_time_format(ms, buf));
}

static json_t *item_json(const struct sk_catalog_item *ci)
{
    long long left = atomic_load(&ci->remaining);
    int sold_out = atomic_load(&ci->sold_out) || left <= 0;
    return json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "id", (json_int_t)ci->item.id,
                     "activity_id", (json_int_t)ci->item.activity_id, "sku", ci->item.sku, "title", ci->item.title,
                     "price_cents", (json_int_t)ci->item.price_cents, "seckill_price_cents",
                     (json_int_t)ci->item.seckill_price_cents, "stock", (json_int_t)atomic_load(&ci->initial),
                     "per_user_limit", (json_int_t)ci->item.per_user_limit, "remaining",
                     (json_int_t)(left > 0 ? left : 0), "sold_out", sold_out);
}

static json_t *activity_json(const struct sk_catalog_activity *a, int64_t now)
{
    json_t *items = json_array();
    for (size_t i = 0; i < a->n_items; i++)
        json_array_append_new(items, item_json(&a->items[i]));
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "id", (json_int_t)a->id, "name", a->name, "state",
                     sk_activity_state_name(sk_catalog_state(a, now)), "starts_at", time_json(a->starts_at_ms),
                     "ends_at", time_json(a->ends_at_ms), "items", items);
}

static const struct sk_catalog_snapshot *snapshot(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    return sk_catalog_current(lc->d->catalog);
}

void sk_client_list_activities(struct sk_http_req *req)
{
    const struct sk_catalog_snapshot *s = snapshot(req);
    int64_t now = sk_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n_activities; i++)
        if (sk_catalog_state(&s->activities[i], now) != SK_ACT_ENDED)
            json_array_append_new(arr, activity_json(&s->activities[i], now));
    sk_http_respond_json(req, 200, json_pack("{s:o, s:o}", "activities", arr, "server_time", time_json(now)));
}

void sk_client_get_activity(struct sk_http_req *req)
{
    const struct sk_catalog_activity *a = sk_catalog_activity(snapshot(req), sk_http_param_id(req, 0));
    int64_t now = sk_now_ms();
    if (a == NULL) {
        sk_http_error(req, 404, "not_found", "no published activity %llu",
                      (unsigned long long)sk_http_param_id(req, 0));
        return;
    }
    json_t *doc = activity_json(a, now);
    json_object_set_new(doc, "server_time", time_json(now));
    sk_http_respond_json(req, 200, doc);
}

void sk_client_get_item(struct sk_http_req *req)
{
    const struct sk_catalog_item *ci = sk_catalog_item(snapshot(req), sk_http_param_id(req, 0));
    int64_t now = sk_now_ms();
    if (ci == NULL) {
        sk_http_error(req, 404, "not_found", "no published item %llu", (unsigned long long)sk_http_param_id(req, 0));
        return;
    }
    json_t *doc = item_json(ci);
    json_object_set_new(doc, "activity_state", json_string(sk_activity_state_name(sk_catalog_state(ci->activity, now))));
    json_object_set_new(doc, "starts_at", time_json(ci->activity->starts_at_ms));
    json_object_set_new(doc, "ends_at", time_json(ci->activity->ends_at_ms));
    json_object_set_new(doc, "server_time", time_json(now));
    sk_http_respond_json(req, 200, doc);
}
