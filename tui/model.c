/* The console's model: admin API answers into structs; see model.h. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "core/timeutil.h"
#include "format.h"

static const char *const act_state_names[] = {"draft", "scheduled", "published", "running", "ended", "cancelled"};
static const char *const ord_status_names[] = {"reserved", "created", "paying", "paid", "closed"};

const char *sk_con_act_state_name(enum sk_con_act_state s)
{
    return (unsigned)s < SK_CON_ACT_UNKNOWN ? act_state_names[s] : "?";
}

int sk_con_act_editable(enum sk_con_act_state s)
{
    return s == SK_CON_ACT_DRAFT || s == SK_CON_ACT_SCHEDULED;
}

static enum sk_con_act_state act_state_parse(const char *name)
{
    for (int i = 0; i < SK_CON_ACT_UNKNOWN; i++)
        if (strcmp(name, act_state_names[i]) == 0)
            return (enum sk_con_act_state)i;
    return SK_CON_ACT_UNKNOWN;
}

const char *sk_con_ord_status_name(enum sk_con_ord_status s)
{
    return (unsigned)s < SK_CON_ORD_COUNT ? ord_status_names[s] : "?";
}

int sk_con_ord_status_parse(const char *name, enum sk_con_ord_status *out)
{
    for (int i = 0; i < SK_CON_ORD_COUNT; i++)
        if (name != NULL && strcmp(name, ord_status_names[i]) == 0) {
            *out = (enum sk_con_ord_status)i;
            return SK_OK;
        }
    return SK_ERR;
}

int sk_con_order_open(enum sk_con_ord_status s)
{
    return s == SK_CON_ORD_RESERVED || s == SK_CON_ORD_CREATED || s == SK_CON_ORD_PAYING;
}

char *sk_con_order_time_left(const struct sk_con_order *o, int64_t now_ms, char *buf, size_t len)
{
    if (!sk_con_order_open(o->status) || o->expires_at < 0)
        snprintf(buf, len, "-");
    else if (o->expires_at <= now_ms)
        snprintf(buf, len, "expired");
    else
        sk_con_fmt_duration(o->expires_at - now_ms, buf, len);
    return buf;
}

/* --- answers ------------------------------------------------------------------- */

/* The code and message of an {"error":{"code","message"}} body; 0 if it is not one. */
static int error_body(const struct sk_con_answer *a, char *code, size_t codelen, char *msg, size_t msglen)
{
    int found = 0;
    json_t *root = NULL, *e, *c, *m;
    if (a->body == NULL || a->len == 0)
        goto out;
    root = json_loadb(a->body, a->len, 0, NULL);
    e = json_object_get(root, "error");
    c = json_object_get(e, "code");
    m = json_object_get(e, "message");
    if (!json_is_string(c) || !json_is_string(m))
        goto out;
    snprintf(code, codelen, "%s", json_string_value(c));
    snprintf(msg, msglen, "%s", json_string_value(m));
    found = 1;
out:
    json_decref(root);
    return found;
}

enum sk_con_outcome sk_con_classify(const struct sk_con_answer *a, char *msg, size_t msglen)
{
    char code[64], text[SK_CON_MSGLEN];
    enum sk_con_outcome o;

    if (a->status == 0) {
        snprintf(msg, msglen, "daemon unreachable: %s", a->transport ? a->transport : "no answer");
        return SK_CON_UNREACHABLE;
    }
    if (a->status >= 200 && a->status < 300)
        return SK_CON_OK;
    int has = error_body(a, code, sizeof(code), text, sizeof(text));
    if (a->status == 401) {
        if (has)
            snprintf(msg, msglen, "bad admin token (401): %s", text);
        else
            snprintf(msg, msglen, "bad admin token (401)");
        return SK_CON_UNAUTHORIZED;
    }
    /* A route the daemon does not have, as opposed to an id it does not know. */
    if (a->status == 404 && has && strcmp(code, "not_found") == 0 && strncmp(text, "no such resource", 16) == 0) {
        snprintf(msg, msglen, "not available on this daemon");
        return SK_CON_UNAVAILABLE;
    }
    o = a->status >= 400 && a->status < 500 ? SK_CON_REFUSED : SK_CON_FAILED;
    if (has)
        snprintf(msg, msglen, "%s (%ld %s)", text, a->status, code);
    else
        snprintf(msg, msglen, "daemon answered %ld without a JSON error", a->status);
    return o;
}

/* --- strict JSON reading ------------------------------------------------------- */

/* Where a value sits, for messages: "activities[2].items[0]". */
struct where {
    char path[128];
    char *err;
    size_t errlen;
};

static int fail(struct where *w, const char *key, const char *fmt, ...) SK_PRINTF(3, 4);
static int fail(struct where *w, const char *key, const char *fmt, ...)
{
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s%s%s: %s", w->path, w->path[0] && key ? "." : "", key ? key : "", what);
    return SK_ERR;
}

static void sub(struct where *child, const struct where *parent, const char *key, size_t index)
{
    *child = *parent;
    snprintf(child->path, sizeof(child->path), "%.60s%s%.16s[%zu]", parent->path, parent->path[0] ? "." : "", key,
             index);
}

/* Copy src into dst, cut at a UTF-8 character boundary when it does not fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int get_int(struct where *w, json_t *obj, const char *key, int64_t min, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fail(w, key, "missing");
    if (!json_is_integer(v))
        return fail(w, key, "not an integer");
    if (json_integer_value(v) < min)
        return fail(w, key, "%lld is out of range", (long long)json_integer_value(v));
    *out = json_integer_value(v);
    return SK_OK;
}

static int get_id(struct where *w, json_t *obj, const char *key, uint64_t *out)
{
    int64_t v;
    if (get_int(w, obj, key, 0, &v) != SK_OK)
        return SK_ERR;
    *out = (uint64_t)v;
    return SK_OK;
}

static int get_num(struct where *w, json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fail(w, key, "missing");
    if (!json_is_number(v))
        return fail(w, key, "not a number");
    *out = json_number_value(v);
    return SK_OK;
}

static int get_str(struct where *w, json_t *obj, const char *key, int optional, char *dst, size_t size)
{
    json_t *v = json_object_get(obj, key);
    if ((v == NULL || json_is_null(v)) && optional) {
        dst[0] = '\0';
        return SK_OK;
    }
    if (v == NULL)
        return fail(w, key, "missing");
    if (!json_is_string(v))
        return fail(w, key, "not a string");
    copy_text(dst, size, json_string_value(v));
    return SK_OK;
}

static int get_bool(struct where *w, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fail(w, key, "missing");
    if (!json_is_boolean(v))
        return fail(w, key, "not true or false");
    *out = json_is_true(v);
    return SK_OK;
}

/* An RFC 3339 time; null (or absent, when nullable) is -1. */
static int get_time(struct where *w, json_t *obj, const char *key, int nullable, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    int64_t ms;
    if (nullable && (v == NULL || json_is_null(v))) {
        *out = -1;
        return SK_OK;
    }
    if (v == NULL)
        return fail(w, key, "missing");
    if (!json_is_string(v) || sk_time_parse(json_string_value(v), &ms) != SK_OK)
        return fail(w, key, "not an RFC 3339 time");
    *out = ms;
    return SK_OK;
}

static json_t *get_array(struct where *w, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v)) {
        fail(w, key, v == NULL ? "missing" : "not an array");
        return NULL;
    }
    return v;
}

static json_t *load(struct where *w, const char *body, size_t len)
{
    json_error_t je;
    json_t *root = body != NULL ? json_loadb(body, len, 0, &je) : NULL;
    if (root == NULL) {
        snprintf(w->err, w->errlen, "not JSON%s%s", body != NULL ? ": " : "", body != NULL ? je.text : "");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(w->err, w->errlen, "not a JSON object");
        return NULL;
    }
    return root;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        fputs("seckill-console: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* --- activities ---------------------------------------------------------------- */

static int read_item(struct where *w, json_t *o, struct sk_con_item *it)
{
    if (!json_is_object(o))
        return fail(w, NULL, "not an object");
    if (get_id(w, o, "id", &it->id) || get_str(w, o, "sku", 0, it->sku, sizeof(it->sku)) ||
        get_str(w, o, "title", 0, it->title, sizeof(it->title)) || get_int(w, o, "price_cents", 0, &it->price_cents) ||
        get_int(w, o, "seckill_price_cents", 0, &it->seckill_price_cents) || get_int(w, o, "stock", 0, &it->stock) ||
        get_int(w, o, "per_user_limit", 0, &it->per_user_limit))
        return SK_ERR;
    return SK_OK;
}

/* Fill *a from o; on failure *a holds what it had (items freed here). */
static int read_activity(struct where *w, json_t *o, struct sk_con_activity *out)
{
    struct sk_con_activity a;
    char state[32];
    json_t *items;
    memset(&a, 0, sizeof(a));

    if (!json_is_object(o))
        return fail(w, NULL, "not an object");
    if (get_id(w, o, "id", &a.id) || get_str(w, o, "name", 0, a.name, sizeof(a.name)) ||
        get_str(w, o, "state", 0, state, sizeof(state)) || get_time(w, o, "publish_at", 1, &a.publish_at) ||
        get_time(w, o, "starts_at", 0, &a.starts_at) || get_time(w, o, "ends_at", 0, &a.ends_at) ||
        get_time(w, o, "created_at", 1, &a.created_at) || get_time(w, o, "updated_at", 1, &a.updated_at))
        return SK_ERR;
    a.state = act_state_parse(state);
    if ((items = get_array(w, o, "items")) == NULL)
        return SK_ERR;
    a.n_items = json_array_size(items);
    a.items = xcalloc(a.n_items, sizeof(*a.items));
    for (size_t i = 0; i < a.n_items; i++) {
        struct where wi;
        sub(&wi, w, "items", i);
        if (read_item(&wi, json_array_get(items, i), &a.items[i]) != SK_OK) {
            free(a.items);
            return SK_ERR;
        }
    }
    *out = a;
    return SK_OK;
}

void sk_con_activity_free(struct sk_con_activity *a)
{
    free(a->items);
    a->items = NULL;
    a->n_items = 0;
}

void sk_con_activity_copy(struct sk_con_activity *dst, const struct sk_con_activity *src)
{
    *dst = *src;
    dst->items = xcalloc(src->n_items, sizeof(*dst->items));
    if (src->n_items > 0)
        memcpy(dst->items, src->items, src->n_items * sizeof(*dst->items));
}

int sk_con_parse_activity(const char *body, size_t len, struct sk_con_activity *out, char *err, size_t errlen)
{
    struct where w = {.path = "", .err = err, .errlen = errlen};
    json_t *root = load(&w, body, len);
    int rc = root != NULL ? read_activity(&w, root, out) : SK_ERR;
    json_decref(root);
    return rc;
}

static void activity_list_free(struct sk_con_activity_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        sk_con_activity_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int parse_activities(json_t *root, struct where *w, struct sk_con_activity_list *out)
{
    struct sk_con_activity_list l = {0};
    json_t *arr = get_array(w, root, "activities");
    int rc = SK_ERR;
    if (arr == NULL)
        goto out;
    l.v = xcalloc(json_array_size(arr), sizeof(*l.v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct where wi;
        sub(&wi, w, "activities", i);
        if (read_activity(&wi, json_array_get(arr, i), &l.v[i]) != SK_OK)
            goto out;
        l.n++;
    }
    activity_list_free(out);
    *out = l;
    l.v = NULL;
    l.n = 0;
    rc = SK_OK;
out:
    activity_list_free(&l);
    return rc;
}

/* --- stock --------------------------------------------------------------------- */

static int parse_stock(json_t *root, struct where *w, struct sk_con_stock *out, int64_t now_mono_ms)
{
    struct sk_con_stock s;
    char state[32];
    json_t *arr;
    int rc = SK_ERR;

    memset(&s, 0, sizeof(s));
    if (get_id(w, root, "activity_id", &s.activity_id) || get_str(w, root, "state", 0, state, sizeof(state)))
        goto out;
    s.state = act_state_parse(state);
    if ((arr = get_array(w, root, "items")) == NULL)
        goto out;
    s.n = json_array_size(arr);
    s.items = xcalloc(s.n, sizeof(*s.items));
    s.at_mono_ms = now_mono_ms;
    for (size_t i = 0; i < s.n; i++) {
        struct where wi;
        struct sk_con_stock_item *it = &s.items[i];
        json_t *o = json_array_get(arr, i);
        sub(&wi, w, "items", i);
        if (!json_is_object(o)) {
            fail(&wi, NULL, "not an object");
            goto out;
        }
        if (get_id(&wi, o, "item_id", &it->item_id) || get_str(&wi, o, "sku", 0, it->sku, sizeof(it->sku)) ||
            get_int(&wi, o, "initial", 0, &it->initial) || get_int(&wi, o, "remaining", 0, &it->remaining) ||
            get_int(&wi, o, "reserved", 0, &it->reserved) || get_int(&wi, o, "paid", 0, &it->paid) ||
            get_bool(&wi, o, "published", &it->published) ||
            get_str(&wi, o, "sale_state", 0, it->sale_state, sizeof(it->sale_state)))
            goto out;
        /* Units taken per second since the last snapshot of the same activity. */
        if (out->activity_id == s.activity_id && out->items != NULL && now_mono_ms > out->at_mono_ms) {
            for (size_t j = 0; j < out->n; j++) {
                if (out->items[j].item_id != it->item_id)
                    continue;
                double d = (double)(it->reserved - out->items[j].reserved);
                it->rate = d > 0 ? d * 1000.0 / (double)(now_mono_ms - out->at_mono_ms) : 0.0;
                it->has_rate = 1;
                break;
            }
        }
    }
    free(out->items);
    *out = s;
    s.items = NULL;
    rc = SK_OK;
out:
    free(s.items);
    return rc;
}

/* --- stats --------------------------------------------------------------------- */

static int parse_stats(json_t *root, struct where *w, struct sk_con_stats *out)
{
    struct sk_con_stats s;
    json_t *obs, *plugins, *v;
    memset(&s, 0, sizeof(s));

    if (get_int(w, root, "uptime_s", 0, &s.uptime_s) || get_num(w, root, "requests_per_s", &s.requests_per_s) ||
        get_num(w, root, "latency_p50_ms", &s.latency_p50_ms) ||
        get_num(w, root, "latency_p99_ms", &s.latency_p99_ms) ||
        get_num(w, root, "reservations_per_s", &s.reservations_per_s))
        return SK_ERR;
    /* null while the daemon runs without a queue plugin */
    s.queue_lag = -1;
    if (!json_is_null(json_object_get(root, "queue_lag")) && get_int(w, root, "queue_lag", 0, &s.queue_lag) != SK_OK)
        return SK_ERR;
    /* The parts below are shown when present: a daemon without a queue or with
     * fewer plugins still has stats worth showing. */
    obs = json_object_get(root, "orders_by_status");
    if (obs != NULL && !json_is_object(obs))
        return fail(w, "orders_by_status", "not an object");
    for (int i = 0; i < SK_CON_ORD_COUNT; i++) {
        s.orders_by_status[i] = -1;
        if (obs != NULL && json_object_get(obs, ord_status_names[i]) != NULL) {
            struct where wo = *w;
            snprintf(wo.path, sizeof(wo.path), "orders_by_status");
            if (get_int(&wo, obs, ord_status_names[i], 0, &s.orders_by_status[i]) != SK_OK)
                return SK_ERR;
        }
    }
    plugins = json_object_get(root, "plugins");
    if (plugins != NULL && !json_is_object(plugins))
        return fail(w, "plugins", "not an object");
    const char *kind;
    json_object_foreach(plugins, kind, v)
    {
        struct where wp = *w;
        if (s.n_plugins == SK_CON_MAX_PLUGINS)
            break;
        snprintf(wp.path, sizeof(wp.path), "plugins.%.40s", kind);
        if (!json_is_object(v))
            return fail(&wp, NULL, "not an object");
        copy_text(s.plugins[s.n_plugins].kind, sizeof(s.plugins[0].kind), kind);
        if (get_str(&wp, v, "name", 0, s.plugins[s.n_plugins].name, sizeof(s.plugins[0].name)) ||
            get_bool(&wp, v, "ready", &s.plugins[s.n_plugins].ready))
            return SK_ERR;
        s.n_plugins++;
    }
    s.mariadb = -1;
    if (json_object_get(root, "mariadb") != NULL && get_bool(w, root, "mariadb", &s.mariadb) != SK_OK)
        return SK_ERR;
    *out = s;
    return SK_OK;
}

/* --- orders -------------------------------------------------------------------- */

static int parse_orders(json_t *root, struct where *w, struct sk_con_order_list *out)
{
    struct sk_con_order_list l = {0};
    json_t *arr = get_array(w, root, "orders");
    char status[32];
    int rc = SK_ERR;
    if (arr == NULL)
        goto out;
    l.v = xcalloc(json_array_size(arr), sizeof(*l.v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct where wi;
        struct sk_con_order *o = &l.v[i];
        json_t *j = json_array_get(arr, i);
        sub(&wi, w, "orders", i);
        if (!json_is_object(j)) {
            fail(&wi, NULL, "not an object");
            goto out;
        }
        if (get_str(&wi, j, "order_no", 0, o->order_no, sizeof(o->order_no)) ||
            get_id(&wi, j, "activity_id", &o->activity_id) || get_id(&wi, j, "item_id", &o->item_id) ||
            get_id(&wi, j, "user_id", &o->user_id) || get_str(&wi, j, "status", 0, status, sizeof(status)) ||
            get_int(&wi, j, "amount_cents", 0, &o->amount_cents) ||
            get_time(&wi, j, "reserved_at", 1, &o->reserved_at) || get_time(&wi, j, "expires_at", 1, &o->expires_at))
            goto out;
        if (sk_con_ord_status_parse(status, &o->status) != SK_OK) {
            fail(&wi, "status", "unknown status \"%.32s\"", status);
            goto out;
        }
        l.n++;
    }
    free(out->v);
    *out = l;
    l.v = NULL;
    rc = SK_OK;
out:
    free(l.v);
    return rc;
}

/* --- blacklist ----------------------------------------------------------------- */

static int parse_blacklist(json_t *root, struct where *w, struct sk_con_blacklist *out)
{
    struct sk_con_blacklist l = {0};
    json_t *arr = get_array(w, root, "users");
    int rc = SK_ERR;
    if (arr == NULL)
        goto out;
    l.v = xcalloc(json_array_size(arr), sizeof(*l.v));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct where wi;
        struct sk_con_bl_entry *e = &l.v[i];
        json_t *j = json_array_get(arr, i);
        sub(&wi, w, "users", i);
        if (!json_is_object(j)) {
            fail(&wi, NULL, "not an object");
            goto out;
        }
        if (get_id(&wi, j, "user_id", &e->user_id) || get_str(&wi, j, "reason", 1, e->reason, sizeof(e->reason)) ||
            get_time(&wi, j, "added_at", 1, &e->added_at))
            goto out;
        l.n++;
    }
    free(out->v);
    *out = l;
    l.v = NULL;
    rc = SK_OK;
out:
    free(l.v);
    return rc;
}

/* --- the model ----------------------------------------------------------------- */

void sk_con_model_init(struct sk_con_model *m)
{
    memset(m, 0, sizeof(*m));
    m->stats.mariadb = -1;
    for (int i = 0; i < SK_CON_ORD_COUNT; i++)
        m->stats.orders_by_status[i] = -1;
}

void sk_con_model_free(struct sk_con_model *m)
{
    activity_list_free(&m->activities);
    free(m->stock.items);
    free(m->orders.v);
    free(m->blacklist.v);
    memset(m, 0, sizeof(*m));
}

enum sk_con_outcome sk_con_model_apply(struct sk_con_model *m, enum sk_con_res_kind kind, const struct sk_con_answer *a,
                                       int64_t now_mono_ms)
{
    struct sk_con_res *r;
    char err[SK_CON_MSGLEN - 32]; /* room for "bad answer from the daemon: " */
    struct where w = {.path = "", .err = err, .errlen = sizeof(err)};
    json_t *root = NULL;
    int rc = SK_ERR;
    enum sk_con_outcome o;

    if ((unsigned)kind >= SK_CON_RES_COUNT)
        return SK_CON_BAD_ANSWER;
    r = &m->res[kind];
    o = sk_con_classify(a, r->err, sizeof(r->err));

    r->at_mono_ms = now_mono_ms;
    r->unavailable = o == SK_CON_UNAVAILABLE;
    if (o != SK_CON_OK)
        goto out;
    if ((root = load(&w, a->body, a->len)) == NULL)
        goto bad;
    switch (kind) {
    case SK_CON_RES_ACTIVITIES:
        rc = parse_activities(root, &w, &m->activities);
        break;
    case SK_CON_RES_STOCK:
        rc = parse_stock(root, &w, &m->stock, now_mono_ms);
        break;
    case SK_CON_RES_STATS:
        rc = parse_stats(root, &w, &m->stats);
        break;
    case SK_CON_RES_ORDERS:
        rc = parse_orders(root, &w, &m->orders);
        break;
    case SK_CON_RES_BLACKLIST:
        rc = parse_blacklist(root, &w, &m->blacklist);
        break;
    default:
        snprintf(err, sizeof(err), "unknown resource");
        break;
    }
    if (rc != SK_OK)
        goto bad;
    r->loaded = 1;
    r->err[0] = '\0';
    goto out;
bad:
    o = SK_CON_BAD_ANSWER;
    snprintf(r->err, sizeof(r->err), "bad answer from the daemon: %s", err);
out:
    r->last = o;
    json_decref(root);
    return o;
}

const struct sk_con_activity *sk_con_model_activity(const struct sk_con_model *m, uint64_t id)
{
    for (size_t i = 0; i < m->activities.n; i++)
        if (m->activities.v[i].id == id)
            return &m->activities.v[i];
    return NULL;
}

uint64_t sk_con_model_live_pick(const struct sk_con_model *m)
{
    static const enum sk_con_act_state order[] = {SK_CON_ACT_RUNNING, SK_CON_ACT_PUBLISHED, SK_CON_ACT_SCHEDULED};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (size_t i = 0; i < m->activities.n; i++)
            if (m->activities.v[i].state == order[k])
                return m->activities.v[i].id;
    return 0;
}

int sk_con_activity_next_event(const struct sk_con_activity *a, int64_t now_ms, const char **what, int64_t *at)
{
    switch (a->state) {
    case SK_CON_ACT_SCHEDULED:
        if (a->publish_at >= 0 && a->publish_at > now_ms) {
            *what = "publish";
            *at = a->publish_at;
            return 1;
        }
        /* Due to publish now: next is the start. */
        /* fall through */
    case SK_CON_ACT_PUBLISHED:
        if (a->starts_at > now_ms) {
            *what = "start";
            *at = a->starts_at;
            return 1;
        }
        /* The clock is ahead of the scheduler's tick: next is the end. */
        /* fall through */
    case SK_CON_ACT_RUNNING:
        *what = "end";
        *at = a->ends_at;
        return 1;
    default:
        return 0;
    }
}
