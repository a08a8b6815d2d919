/* JSON <-> struct sk_activity, with validation. */
#include "activity_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) SK_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SK_ERR;
}

/* Only the keys in `allowed` (NULL-terminated) may appear in obj. */
static int check_keys(const json_t *obj, const char *const *allowed, const char *where, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return fail(err, errlen, "%s%s: unknown field", where, key);
    }
    return SK_OK;
}

/* A string field of 1..max-1 bytes into dst (dst has `max` bytes). */
static int get_text(const json_t *obj, const char *key, const char *where, char *dst, size_t max, int required,
                    char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return required ? fail(err, errlen, "%s%s: required", where, key) : SK_OK;
    if (!json_is_string(v))
        return fail(err, errlen, "%s%s: must be a string", where, key);
    size_t len = json_string_length(v);
    if (len == 0 || len >= max)
        return fail(err, errlen, "%s%s: must be 1 to %zu bytes", where, key, max - 1);
    if (memchr(json_string_value(v), '\0', len) != NULL)
        return fail(err, errlen, "%s%s: must not contain NUL", where, key);
    memcpy(dst, json_string_value(v), len + 1);
    return SK_OK;
}

static int get_int(const json_t *obj, const char *key, const char *where, int64_t lo, int64_t hi, int64_t *dst,
                   int required, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return required ? fail(err, errlen, "%s%s: required", where, key) : SK_OK;
    if (!json_is_integer(v))
        return fail(err, errlen, "%s%s: must be an integer", where, key);
    json_int_t n = json_integer_value(v);
    if (n < lo || n > hi)
        return fail(err, errlen, "%s%s: must be between %lld and %lld", where, key, (long long)lo, (long long)hi);
    *dst = n;
    return SK_OK;
}

/* An RFC 3339 time; `nullable` lets null mean "not set" (0). */
static int get_time(const json_t *obj, const char *key, int64_t *dst, int required, int nullable, char *err,
                    size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return required ? fail(err, errlen, "%s: required", key) : SK_OK;
    if (nullable && json_is_null(v)) {
        *dst = 0;
        return SK_OK;
    }
    if (!json_is_string(v) || sk_time_parse(json_string_value(v), dst) != SK_OK)
        return fail(err, errlen, "%s: must be an RFC 3339 time such as \"2026-11-25T10:00:00Z\"", key);
    return SK_OK;
}

static const struct sk_item *find_item(const struct sk_activity *base, uint64_t id)
{
    for (size_t i = 0; base && i < base->n_items; i++)
        if (base->items[i].id == id)
            return &base->items[i];
    return NULL;
}

static int parse_item(const json_t *v, size_t idx, const struct sk_activity *base, struct sk_item *it, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"id", "sku", "title", "price_cents", "seckill_price_cents", "stock",
                                       "per_user_limit", "activity_id", NULL};
    char where[32];
    snprintf(where, sizeof(where), "items[%zu].", idx);
    if (!json_is_object(v))
        return fail(err, errlen, "items[%zu]: must be an object", idx);
    if (check_keys(v, keys, where, err, errlen) != SK_OK)
        return SK_ERR;

    const struct sk_item *old = NULL;
    json_t *id = json_object_get(v, "id");
    if (id != NULL) {
        if (!json_is_integer(id) || json_integer_value(id) <= 0)
            return fail(err, errlen, "%sid: must be a positive integer", where);
        old = find_item(base, (uint64_t)json_integer_value(id));
        if (old == NULL)
            return fail(err, errlen, "%sid: no item %lld in this activity", where, (long long)json_integer_value(id));
        *it = *old;
    } else {
        memset(it, 0, sizeof(*it));
        it->per_user_limit = 1;
    }
    int required = old == NULL;
    int64_t price = it->price_cents, sprice = it->seckill_price_cents, stock = it->stock,
            limit = it->per_user_limit;
    if (get_text(v, "sku", where, it->sku, sizeof(it->sku), required, err, errlen) != SK_OK ||
        get_text(v, "title", where, it->title, sizeof(it->title), required, err, errlen) != SK_OK ||
        get_int(v, "price_cents", where, 0, SK_MAX_PRICE_CENTS, &price, required, err, errlen) != SK_OK ||
        get_int(v, "seckill_price_cents", where, 0, SK_MAX_PRICE_CENTS, &sprice, required, err, errlen) != SK_OK ||
        get_int(v, "stock", where, 1, SK_MAX_STOCK, &stock, required, err, errlen) != SK_OK ||
        get_int(v, "per_user_limit", where, 1, 1000, &limit, 0, err, errlen) != SK_OK)
        return SK_ERR;
    /* stock and limit get their own range messages: "> 0" and ">= 1" read better */
    if (sprice > price)
        return fail(err, errlen, "%sseckill_price_cents: must not exceed price_cents", where);
    it->price_cents = price;
    it->seckill_price_cents = sprice;
    it->stock = stock;
    it->per_user_limit = (uint32_t)limit;
    return SK_OK;
}

int sk_activity_from_json(const json_t *body, const struct sk_activity *base, struct sk_activity *out, char *err,
                          size_t errlen)
{
    static const char *const keys[] = {"name", "publish_at", "starts_at", "ends_at", "items",
                                       "id", "state", "created_at", "updated_at", NULL};
    struct sk_activity a;
    struct sk_item *items = NULL;
    int rc = SK_ERR;

    if (!json_is_object(body))
        return fail(err, errlen, "body: must be a JSON object");
    if (check_keys(body, keys, "", err, errlen) != SK_OK)
        return SK_ERR;
    if (base) {
        a = *base;
        a.items = NULL;
        a.n_items = 0;
    } else {
        memset(&a, 0, sizeof(a));
        a.state = SK_ACT_DRAFT;
    }
    int required = base == NULL;
    if (get_text(body, "name", "", a.name, sizeof(a.name), required, err, errlen) != SK_OK ||
        get_time(body, "publish_at", &a.publish_at_ms, 0, 1, err, errlen) != SK_OK ||
        get_time(body, "starts_at", &a.starts_at_ms, required, 0, err, errlen) != SK_OK ||
        get_time(body, "ends_at", &a.ends_at_ms, required, 0, err, errlen) != SK_OK)
        goto out;
    if (a.starts_at_ms >= a.ends_at_ms) {
        fail(err, errlen, "ends_at: must be after starts_at");
        goto out;
    }
    if (a.publish_at_ms != 0 && a.publish_at_ms > a.starts_at_ms) {
        fail(err, errlen, "publish_at: must not be after starts_at");
        goto out;
    }

    json_t *jitems = json_object_get(body, "items");
    if (jitems == NULL && base != NULL) {
        a.n_items = base->n_items;
        items = calloc(a.n_items ? a.n_items : 1, sizeof(*items));
        if (items == NULL) {
            fail(err, errlen, "out of memory");
            goto out;
        }
        if (a.n_items)
            memcpy(items, base->items, a.n_items * sizeof(*items));
    } else {
        if (!json_is_array(jitems) || json_array_size(jitems) == 0 ||
            json_array_size(jitems) > SK_MAX_ITEMS_PER_ACTIVITY) {
            fail(err, errlen, "items: %s", jitems == NULL ? "required" : "must be an array of 1 to 1000 items");
            goto out;
        }
        a.n_items = json_array_size(jitems);
        items = calloc(a.n_items, sizeof(*items));
        if (items == NULL) {
            fail(err, errlen, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < a.n_items; i++) {
            if (parse_item(json_array_get(jitems, i), i, base, &items[i], err, errlen) != SK_OK)
                goto out;
            for (size_t j = 0; j < i; j++) {
                if (strcmp(items[j].sku, items[i].sku) == 0) {
                    fail(err, errlen, "items[%zu].sku: \"%s\" appears twice", i, items[i].sku);
                    goto out;
                }
                if (items[i].id != 0 && items[j].id == items[i].id) {
                    fail(err, errlen, "items[%zu].id: item %llu appears twice", i,
                         (unsigned long long)items[i].id);
                    goto out;
                }
            }
        }
    }
    a.items = items;
    items = NULL;
    *out = a;
    rc = SK_OK;
out:
    free(items);
    return rc;
}

static json_t *time_or_null(int64_t ms)
{
    char buf[SK_TIME_TEXT_LEN];
    return ms ? json_string(sk_time_format(ms, buf)) : json_null();
}

json_t *sk_item_to_json(const struct sk_item *it)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)it->id, "activity_id",
                     (json_int_t)it->activity_id, "sku", it->sku, "title", it->title, "price_cents",
                     (json_int_t)it->price_cents, "seckill_price_cents", (json_int_t)it->seckill_price_cents,
                     "stock", (json_int_t)it->stock, "per_user_limit", (json_int_t)it->per_user_limit);
}

json_t *sk_activity_to_json(const struct sk_activity *a)
{
    json_t *items = json_array();
    for (size_t i = 0; i < a->n_items; i++)
        json_array_append_new(items, sk_item_to_json(&a->items[i]));
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id, "name", a->name,
                     "state", sk_activity_state_name(a->state), "publish_at", time_or_null(a->publish_at_ms),
                     "starts_at", time_or_null(a->starts_at_ms), "ends_at", time_or_null(a->ends_at_ms),
                     "created_at", time_or_null(a->created_at_ms), "updated_at", time_or_null(a->updated_at_ms),
                     "items", items);
}
