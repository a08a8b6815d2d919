/*
 * The `redis` stock plugin: every item's stock is one Redis key and every verb is
 * one Lua script run atomically (scripts.c), over one async connection per event
 * loop (redis_conn.c). The .so exports only `sk_plugin`.
 *
 * Config (the plugin's `config:` mapping), every key optional:
 *   host (127.0.0.1), port (6379), db (0), password (none), connect_timeout_ms
 *   (1000), command_timeout_ms (1000), key_prefix ("sk"), reserve_batch (64: the most
 *   reservations of one item sent in one call, reserve_batch.h; 1 sends each alone),
 *   reserve_inflight (2: the most calls of one item in flight per connection).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "redis_conf.h"
#include "redis_conn.h"
#include "reserve_batch.h"
#include "scripts.h"
#include "say.h"

#define PLUGIN_VERSION "1.0.0"
#define ORDER_NO_MAX SK_RBATCH_ORDER_NO_MAX
#define RESERVE_BATCH_DEFAULT 64
#define RESERVE_INFLIGHT_DEFAULT 2

/* The instance: the parsed config and the metrics, shared by every connection. */
struct redis_stock {
    const struct sk_host *host;
    struct sk_rconn_conf conf;
    char prefix[64];
    struct sk_rconn_script scripts[RS_NSCRIPTS];
    struct sk_rconn_metrics m;
    unsigned reserve_batch, reserve_inflight;
    struct sk_metric *batches, *batched;
};

/* What attach() returns: one Redis connection on one loop, and its reservations
 * waiting for the end of the loop's turn. */
struct stock_conn {
    struct redis_stock *rs;
    struct sk_rconn *rc;
    struct sk_rbatch_set *batches;
};

/* One verb in flight; freed when its callback has run. */
struct verb {
    sk_stock_cb cb;
    void *arg;
    enum sk_rstock_script script;
    uint64_t item_id;
    char order_no[ORDER_NO_MAX + 1];
};

/* ---- config ------------------------------------------------------------- */

/* The keys are the shared Redis keys (plugins/common/redis_conf.h), and nothing
 * else: a queue plugin pointed at the same section finds the same ones. */
static int conf_parse(struct redis_stock *rs, const char *text, char *errbuf)
{
    json_error_t jerr;
    json_t *root = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *v;
    int rc = SK_ERR;

    if (root == NULL) {
        say(errbuf, "config is not valid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        say(errbuf, "config must be a mapping, not %s", sk_conf_type_name(root));
        goto out;
    }
    sk_rconf_defaults(&rs->conf, rs->prefix, sizeof(rs->prefix));
    rs->conf.client_name = "seckill-stock-redis";
    rs->reserve_batch = RESERVE_BATCH_DEFAULT;
    rs->reserve_inflight = RESERVE_INFLIGHT_DEFAULT;
    json_object_foreach(root, key, v)
    {
        long long n;
        if (strcmp(key, "reserve_batch") == 0) {
            if (sk_conf_int(key, v, 1, SK_RBATCH_MAX, &n, errbuf) != SK_OK)
                goto out;
            rs->reserve_batch = (unsigned)n;
            continue;
        }
        if (strcmp(key, "reserve_inflight") == 0) {
            if (sk_conf_int(key, v, 1, SK_RBATCH_INFLIGHT_MAX, &n, errbuf) != SK_OK)
                goto out;
            rs->reserve_inflight = (unsigned)n;
            continue;
        }
        int known = sk_rconf_key(&rs->conf, rs->prefix, sizeof(rs->prefix), key, v, errbuf);
        if (known == SK_ERR)
            goto out;
        if (known == 0) {
            say(errbuf, "config key %s: unknown key (known: " SK_RCONF_KEYS ", reserve_batch, reserve_inflight)", key);
            goto out;
        }
    }
    if (sk_rconf_resolve(&rs->conf, errbuf) != SK_OK)
        goto out;
    rc = SK_OK;
out:
    json_decref(root);
    return rc;
}

/* ---- instance ----------------------------------------------------------- */

static int redis_create(const struct sk_host *host, void **instance, char *errbuf)
{
    struct redis_stock *rs = calloc(1, sizeof(*rs));
    int rc = SK_ERR;

    if (rs == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    rs->host = host;
    if (conf_parse(rs, host->config_json, errbuf) != SK_OK)
        goto out;
    for (size_t i = 0; i < RS_NSCRIPTS; i++)
        rs->scripts[i] = (struct sk_rconn_script){.name = sk_rstock_scripts[i].name, .text = sk_rstock_scripts[i].text};
    rs->m.commands = host->counter(host, "commands_total", "Commands written to Redis (scripts and handshakes).");
    rs->m.errors = host->counter(host, "errors_total", "Redis commands and handshakes that failed.");
    rs->m.reconnects = host->counter(host, "reconnects_total", "Connection attempts to Redis after the first.");
    rs->batches = host->counter(host, "reserve_calls_total", "Reserve script calls sent, each with a batch of reservations.");
    rs->batched = host->counter(host, "reserve_batched_total", "Reservations sent in those calls.");
    host->log(host, SK_LOG_INFO, "redis at %s:%d db %d, keys under \"%s:\", up to %u reservations per call, %u calls of an item in flight",
              rs->conf.host_name, rs->conf.port, rs->conf.db, rs->prefix, rs->reserve_batch, rs->reserve_inflight);
    *instance = rs;
    rs = NULL;
    rc = SK_OK;
out:
    free(rs);
    return rc;
}

static void redis_destroy(void *instance)
{
    free(instance);
}

static int redis_attach(void *instance, uv_loop_t *loop, void **conn, char *errbuf)
{
    struct redis_stock *rs = instance;
    struct stock_conn *sc = calloc(1, sizeof(*sc));
    int rc = SK_ERR;

    if (sc == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    sc->rs = rs;
    if (sk_rconn_open(loop, &rs->conf, rs->scripts, RS_NSCRIPTS, rs->host, &rs->m, &sc->rc, errbuf) != SK_OK)
        goto out;
    struct sk_rbatch_conf bc = {
        .prefix = rs->prefix,
        .max = rs->reserve_batch,
        .inflight = rs->reserve_inflight,
        /* Half the command timeout: the daemon gives up after the whole of it, and
         * the other half leaves room for the reply and for the two clocks to differ. */
        .deadline_ms = rs->conf.command_timeout_ms / 2,
        .batches = rs->batches,
        .reserved = rs->batched,
        .host = rs->host,
    };
    if (sk_rbatch_set_new(sc->rc, &bc, &sc->batches) != SK_OK) {
        say(errbuf, "out of memory");
        sk_rconn_close(sc->rc);
        goto out;
    }
    *conn = sc;
    sc = NULL;
    rc = SK_OK;
out:
    free(sc);
    return rc;
}

static void redis_detach(void *conn)
{
    struct stock_conn *sc = conn;
    if (sc == NULL)
        return;
    sk_rbatch_set_close(sc->batches);
    sk_rconn_close(sc->rc);
    free(sc);
}

static int redis_ready(void *conn)
{
    const struct stock_conn *sc = conn;
    return sc != NULL && sk_rconn_ready(sc->rc);
}

/* ---- verbs -------------------------------------------------------------- */

/* The scripts answer { code, initial, remaining, user_count, state, … } (scripts.h):
 * reserve and get_order add six order fields, release adds `changed`. */
static int parse_reply(const redisReply *r, long long *code, struct sk_stock_reply *out, long long *extra,
                       size_t *nextra)
{
    long long v[5];
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5 || r->elements > 5 + 6)
        return SK_ERR;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return SK_ERR;
    for (size_t i = 0; i < 5; i++)
        v[i] = r->element[i]->integer;
    *nextra = r->elements - 5;
    for (size_t i = 0; i < *nextra; i++)
        extra[i] = r->element[5 + i]->integer;
    *code = v[0];
    out->outcome = SK_RESERVED;
    out->initial = v[1];
    out->remaining = v[2];
    out->user_count = sk_rstock_count(v[3]);
    out->state = sk_rstock_state_of(v[4]);
    return SK_OK;
}

/* The six order fields { user, seq, activity, price, reserved_at, expires_at }. */
static void fill_order(struct sk_stock_order *o, uint64_t item_id, const long long *f)
{
    o->user_id = (uint64_t)f[0];
    o->seq = sk_rstock_count(f[1]);
    o->activity_id = (uint64_t)f[2];
    o->item_id = item_id;
    o->price_cents = f[3];
    o->reserved_at_ms = f[4];
    o->expires_at_ms = f[5];
}

static void on_script(void *arg, const redisReply *reply, const char *err)
{
    struct verb *v = arg;
    struct sk_stock_reply out = {0};
    struct sk_stock_order order;
    char msg[SK_ERRLEN];
    long long code = 0, extra[6];
    size_t nextra = 0;
    const char *fail = NULL;

    if (reply == NULL) {
        fail = err;
        goto out;
    }
    if (parse_reply(reply, &code, &out, extra, &nextra) != SK_OK ||
        (v->script == RS_GET_ORDER && nextra != 6) ||
        (v->script == RS_RELEASE && nextra != 1)) {
        say(msg, "redis gave an unexpected answer to %s of item %" PRIu64, sk_rstock_scripts[v->script].name,
            v->item_id);
        fail = msg;
        goto out;
    }
    if (code == RS_CODE_OTHER_BUYER && v->script == RS_RELEASE) {
        say(msg, "order %s of item %" PRIu64 " belongs to another buyer", v->order_no, v->item_id);
        fail = msg;
    } else if (v->script == RS_GET_ORDER) {
        if (code == RS_CODE_OK) {
            fill_order(&order, v->item_id, extra);
            out.order = &order;
        } else if (code != RS_CODE_NO_ORDER) {
            say(msg, "redis gave an unknown code %lld to get_order of item %" PRIu64, code, v->item_id);
            fail = msg;
        }
    } else if (code == RS_CODE_NOT_PUBLISHED && v->script != RS_PUBLISH && v->script != RS_RELEASE) {
        say(msg, "item %" PRIu64 " is not published", v->item_id);
        fail = msg;
    } else if (code == RS_CODE_CLOSED_FOR_GOOD && v->script == RS_SET_STATE) {
        say(msg, "item %" PRIu64 " is closed; a closed item cannot be reopened", v->item_id);
        fail = msg;
    } else if (code != RS_CODE_OK) {
        say(msg, "redis gave an unknown code %lld to %s of item %" PRIu64, code, sk_rstock_scripts[v->script].name,
            v->item_id);
        fail = msg;
    } else if (v->script == RS_RELEASE) {
        out.changed = extra[0] == 1;
    }
out:
    if (fail != NULL)
        v->cb(v->arg, SK_ERR, NULL, fail);
    else
        v->cb(v->arg, SK_OK, &out, NULL);
    free(v);
}

static struct verb *verb_new(enum sk_rstock_script script, uint64_t item_id, const char *order_no, sk_stock_cb cb,
                             void *arg)
{
    struct verb *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->cb = cb;
    v->arg = arg;
    v->script = script;
    v->item_id = item_id;
    if (order_no != NULL)
        snprintf(v->order_no, sizeof(v->order_no), "%s", order_no);
    return v;
}

/* Fail a verb whose arguments are wrong, from the loop, like any other failure. */
static int refuse(struct stock_conn *sc, enum sk_rstock_script script, uint64_t item_id, sk_stock_cb cb, void *arg,
                  const char *why)
{
    struct verb *v = verb_new(script, item_id, NULL, cb, arg);
    if (v == NULL)
        return SK_ERR;
    if (sk_rconn_fail(sc->rc, why, on_script, v) != SK_OK) {
        free(v);
        return SK_ERR;
    }
    return SK_OK;
}

/* Run `script` on the item's keys with `args`; cb runs once, later. */
static int run(struct stock_conn *sc, enum sk_rstock_script script, uint64_t item_id, const char *order_no,
               size_t nargs, const char *const *args, sk_stock_cb cb, void *arg)
{
    struct sk_rstock_keys k;
    size_t nkeys = sk_rstock_scripts[script].nkeys;
    struct verb *v;

    sk_rstock_keys(sc->rs->prefix, item_id, nkeys, &k);
    v = verb_new(script, item_id, order_no, cb, arg);
    if (v == NULL)
        return SK_ERR;
    if (sk_rconn_eval(sc->rc, script, nkeys, k.keys, nargs, args, on_script, v) != SK_OK) {
        free(v);
        return SK_ERR;
    }
    return SK_OK;
}

static int redis_publish(void *conn, const struct sk_stock_item *item, sk_stock_cb cb, void *arg)
{
    struct stock_conn *sc = conn;
    char a[6][24], why[SK_ERRLEN];
    const char *args[6] = {a[0], a[1], a[2], a[3], a[4], a[5]};

    if (sc == NULL || item == NULL || cb == NULL)
        return SK_ERR;
    why[0] = '\0';
    if (item->stock <= 0)
        say(why, "item %" PRIu64 ": stock must be more than 0, not %" PRId64, item->item_id, item->stock);
    else if (item->per_user_limit < 1)
        say(why, "item %" PRIu64 ": per-user limit must be at least 1", item->item_id);
    else if (item->price_cents < 0)
        say(why, "item %" PRIu64 ": price must not be negative", item->item_id);
    else if (item->ends_at_ms <= item->starts_at_ms)
        say(why, "item %" PRIu64 ": the sale must end after it starts", item->item_id);
    if (why[0] != '\0')
        return refuse(sc, RS_PUBLISH, item->item_id, cb, arg, why);
    snprintf(a[0], sizeof(a[0]), "%" PRIu64, item->activity_id);
    snprintf(a[1], sizeof(a[1]), "%" PRIu32, item->per_user_limit);
    snprintf(a[2], sizeof(a[2]), "%" PRId64, item->price_cents);
    snprintf(a[3], sizeof(a[3]), "%" PRId64, item->starts_at_ms);
    snprintf(a[4], sizeof(a[4]), "%" PRId64, item->ends_at_ms);
    snprintf(a[5], sizeof(a[5]), "%" PRId64, item->stock);
    return run(sc, RS_PUBLISH, item->item_id, NULL, 6, args, cb, arg);
}

static int redis_query(void *conn, uint64_t item_id, sk_stock_cb cb, void *arg)
{
    struct stock_conn *sc = conn;
    if (sc == NULL || cb == NULL)
        return SK_ERR;
    return run(sc, RS_QUERY, item_id, NULL, 0, NULL, cb, arg);
}

static int redis_set_state(void *conn, uint64_t item_id, enum sk_stock_state state, sk_stock_cb cb, void *arg)
{
    static const char *const names[] = {
        [SK_STOCK_OPEN] = "open", [SK_STOCK_PAUSED] = "paused", [SK_STOCK_CLOSED] = "closed"};
    struct stock_conn *sc = conn;
    char why[SK_ERRLEN];
    const char *args[1];

    if (sc == NULL || cb == NULL)
        return SK_ERR;
    if ((int)state < SK_STOCK_OPEN || (int)state > SK_STOCK_CLOSED) {
        say(why, "item %" PRIu64 ": unknown sale state %d", item_id, (int)state);
        return refuse(sc, RS_SET_STATE, item_id, cb, arg, why);
    }
    args[0] = names[state];
    return run(sc, RS_SET_STATE, item_id, NULL, 1, args, cb, arg);
}

static int redis_add_units(void *conn, uint64_t item_id, int64_t units, sk_stock_cb cb, void *arg)
{
    struct stock_conn *sc = conn;
    char a[24], why[SK_ERRLEN];
    const char *args[1] = {a};

    if (sc == NULL || cb == NULL)
        return SK_ERR;
    if (units <= 0) {
        say(why, "item %" PRIu64 ": units to add must be more than 0, not %" PRId64, item_id, units);
        return refuse(sc, RS_ADD_UNITS, item_id, cb, arg, why);
    }
    snprintf(a, sizeof(a), "%" PRId64, units);
    return run(sc, RS_ADD_UNITS, item_id, NULL, 1, args, cb, arg);
}

static int order_no_ok(const char *order_no)
{
    return order_no != NULL && order_no[0] != '\0' && strlen(order_no) <= ORDER_NO_MAX;
}

/* Reservations go out in batches, at the end of the loop's turn (reserve_batch.h). */
static int redis_reserve(void *conn, const struct sk_reserve_req *req, sk_stock_cb cb, void *arg)
{
    struct stock_conn *sc = conn;
    char why[SK_ERRLEN];

    if (sc == NULL || req == NULL || cb == NULL)
        return SK_ERR;
    if (!order_no_ok(req->order_no)) {
        say(why, "item %" PRIu64 ": the order number must be 1 to %d bytes", req->item_id, ORDER_NO_MAX);
        return refuse(sc, RS_RESERVE, req->item_id, cb, arg, why);
    }
    return sk_rbatch_add(sc->batches, req, cb, arg);
}

static int redis_release(void *conn, uint64_t item_id, uint64_t user_id, const char *order_no, sk_stock_cb cb,
                         void *arg)
{
    struct stock_conn *sc = conn;
    char user[24], why[SK_ERRLEN];
    const char *args[2] = {order_no, user};

    if (sc == NULL || cb == NULL)
        return SK_ERR;
    if (!order_no_ok(order_no)) {
        say(why, "item %" PRIu64 ": the order number must be 1 to %d bytes", item_id, ORDER_NO_MAX);
        return refuse(sc, RS_RELEASE, item_id, cb, arg, why);
    }
    snprintf(user, sizeof(user), "%" PRIu64, user_id);
    return run(sc, RS_RELEASE, item_id, order_no, 2, args, cb, arg);
}

static int redis_get_order(void *conn, uint64_t item_id, const char *order_no, sk_stock_cb cb, void *arg)
{
    struct stock_conn *sc = conn;
    char why[SK_ERRLEN];
    const char *args[1] = {order_no};

    if (sc == NULL || cb == NULL)
        return SK_ERR;
    if (!order_no_ok(order_no)) {
        say(why, "item %" PRIu64 ": the order number must be 1 to %d bytes", item_id, ORDER_NO_MAX);
        return refuse(sc, RS_GET_ORDER, item_id, cb, arg, why);
    }
    return run(sc, RS_GET_ORDER, item_id, order_no, 1, args, cb, arg);
}

static const struct sk_stock_ops redis_ops = {
    .size = sizeof(struct sk_stock_ops),
    .attach = redis_attach,
    .detach = redis_detach,
    .ready = redis_ready,
    .publish = redis_publish,
    .query = redis_query,
    .set_state = redis_set_state,
    .add_units = redis_add_units,
    .reserve = redis_reserve,
    .release = redis_release,
    .get_order = redis_get_order,
};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "redis",
    .version = PLUGIN_VERSION,
    .kind = SK_PLUGIN_STOCK,
    .create = redis_create,
    .destroy = redis_destroy,
    .ops = &redis_ops,
};
