/*
 * The redis stock plugin (plugins/stock/redis/), driven through the plugin host on
 * a libuv loop of the test's own, against the stack's real redis-server (db 3 for
 * this suite; Redis keys are checked with a synchronous hiredis connection).
 *
 * The cases with a fake server (a loopback TCP listener on the test's loop that
 * parses commands with hiredis' reader) cover what a healthy Redis never does:
 * never answering, or having lost its scripts.
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <seckill/plugin.h>
#include <uv.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/plugin_host.h"
#include "core/timeutil.h"
#include "tests/support.h"

#define REDIS_DB 3
#define ACT 77 /* activity id of every item here */

/* ---- the plugin on a loop ----------------------------------------------- */

struct env {
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    const struct sk_stock_ops *ops;
    uv_loop_t loop;
    uv_timer_t guard;
    int expired;
    void *conn;
    redisContext *r; /* for assertions; NULL in cases without the real Redis */
};

static const char *plugin_build_dir(void)
{
    const char *v = getenv("SK_PLUGIN_BUILD_DIR");
    return v && *v ? v : SK_TEST_BUILDDIR "/plugins/.libs";
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop until *flag is set (by a callback) or timeout_ms pass; returns *flag. */
static int run_until_flag(struct env *e, const int *flag, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while (!*flag && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return *flag;
}

/* Run the loop for ms milliseconds whatever happens. */
static void run_for(struct env *e, unsigned ms)
{
    int never = 0;
    run_until_flag(e, &never, ms);
}

/* Run until ready() is `want` (it only changes on loop events) or timeout_ms pass. */
static int run_until_ready(struct env *e, int want, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while ((e->ops->ready(e->conn) != 0) != want && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return (e->ops->ready(e->conn) != 0) == want;
}

/* A fresh loop with the guard timer on it. */
static void env_loop(struct env *e)
{
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN); /* the daemon does the same; hiredis writes to sockets */
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(uv_timer_init(&e->loop, &e->guard), 0);
    e->guard.data = &e->expired;
}

/* Load the plugin with `json` as its config and attach it to the loop. */
static void env_plugin(struct env *e, const char *json)
{
    char err[SK_ERRLEN] = "";
    snprintf(e->cfg.plugin_dir, sizeof(e->cfg.plugin_dir), "%s", plugin_build_dir());
    e->pc.present = 1;
    snprintf(e->pc.name, sizeof(e->pc.name), "redis");
    e->pc.config_json = strdup(json);
    ck_assert_ptr_nonnull(e->pc.config_json);
    snprintf(e->pc.where, sizeof(e->pc.where), "check_redis_stock");
    ck_assert_msg(sk_plugin_load(&e->cfg, &e->pc, SK_PLUGIN_STOCK, &e->p, err) == SK_OK, "%s", err);
    e->ops = sk_plugin_stock_ops(&e->p);
    ck_assert_msg(e->ops->attach(e->p.instance, &e->loop, &e->conn, err) == SK_OK, "%s", err);
}

static void up_with(struct env *e, const char *json, int real_redis)
{
    env_loop(e);
    if (real_redis)
        e->r = sk_test_redis(REDIS_DB);
    env_plugin(e, json);
}

/* The real Redis, db 3, prefix "t", with `extra` config keys (may be ""). */
static void up(struct env *e, const char *extra)
{
    char json[512];
    snprintf(json, sizeof(json), "{\"host\":\"%s\",\"port\":%d,\"db\":%d,\"key_prefix\":\"t\"%s%s}",
             sk_test_redis_host(), sk_test_redis_port(), REDIS_DB, extra[0] ? "," : "", extra);
    up_with(e, json, 1);
    ck_assert_msg(run_until_ready(e, 1, 5000), "the plugin did not connect to redis at %s:%d", sk_test_redis_host(),
                  sk_test_redis_port());
}

/* Let every handle close (the loop must end by itself), unload. */
static void env_end(struct env *e)
{
    uv_close((uv_handle_t *)&e->guard, NULL);
    ck_assert_int_eq(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    ck_assert_msg(uv_loop_close(&e->loop) == 0, "detach left handles open on the loop");
    sk_plugin_unload(&e->p);
    free(e->pc.config_json);
    if (e->r != NULL)
        redisFree(e->r);
}

static void down(struct env *e)
{
    e->ops->detach(e->conn);
    env_end(e);
}

static int64_t counter(const char *name)
{
    char full[128];
    snprintf(full, sizeof(full), "seckill_plugin_redis_%s", name);
    return sk_metric_value(sk_metric_counter(full, "", ""));
}

/* ---- one verb, its callback --------------------------------------------- */

struct res {
    int done;
    int calls;
    int status;
    struct sk_stock_reply r;
    struct sk_stock_order order; /* a copy of r.order (valid only in the callback) */
    int has_order;
    char err[SK_ERRLEN];
};

static void on_res(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct res *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    if (status == SK_OK) {
        ck_assert_ptr_nonnull(reply);
        ck_assert_ptr_null(err);
        x->r = *reply;
        x->has_order = reply->order != NULL;
        if (reply->order)
            x->order = *reply->order;
        x->r.order = NULL;
    } else {
        ck_assert_ptr_null(reply);
        ck_assert_ptr_nonnull(err);
        snprintf(x->err, sizeof(x->err), "%s", err);
    }
}

/* Start a verb (`call` uses &x as its arg), check that its callback did not run
 * inside the call, run the loop until it has, and check it ran once. */
#define RUN(e, x, call)                                                                                                \
    do {                                                                                                               \
        memset(&(x), 0, sizeof(x));                                                                                    \
        ck_assert_int_eq((call), SK_OK);                                                                               \
        ck_assert_msg((x).calls == 0, "the callback ran inside the verb call");                                        \
        ck_assert_msg(run_until_flag((e), &(x).done, 5000), "no callback within 5 s");                                 \
        ck_assert_int_eq((x).calls, 1);                                                                                \
    } while (0)

#define OK(x) ck_assert_msg((x).status == SK_OK, "verb failed: %s", (x).err)

static struct sk_stock_item item(uint64_t id, int64_t stock, uint32_t limit)
{
    int64_t now = sk_now_ms();
    return (struct sk_stock_item){
        .activity_id = ACT,
        .item_id = id,
        .stock = stock,
        .per_user_limit = limit,
        .price_cents = 990,
        .starts_at_ms = now - 60000,
        .ends_at_ms = now + 3600000,
    };
}

static void publish(struct env *e, const struct sk_stock_item *it)
{
    struct res x;
    RUN(e, x, e->ops->publish(e->conn, it, on_res, &x));
    OK(x);
}

/* Reserve one unit of `item_id` for `user` with order number "o<item>-<user>-<n>". */
static struct res reserve_at(struct env *e, uint64_t item_id, uint64_t user, int n, int64_t now_ms)
{
    char order_no[64];
    struct res x;
    snprintf(order_no, sizeof(order_no), "o%" PRIu64 "-%" PRIu64 "-%d", item_id, user, n);
    struct sk_reserve_req req = {
        .activity_id = ACT,
        .item_id = item_id,
        .user_id = user,
        .order_no = order_no,
        .now_ms = now_ms,
        .expires_at_ms = now_ms + 900000,
    };
    RUN(e, x, e->ops->reserve(e->conn, &req, on_res, &x));
    return x;
}

static struct res reserve(struct env *e, uint64_t item_id, uint64_t user, int n)
{
    return reserve_at(e, item_id, user, n, sk_now_ms());
}

static struct res release(struct env *e, uint64_t item_id, uint64_t user, const char *order_no)
{
    struct res x;
    RUN(e, x, e->ops->release(e->conn, item_id, user, order_no, on_res, &x));
    return x;
}

static struct res query(struct env *e, uint64_t item_id)
{
    struct res x;
    RUN(e, x, e->ops->query(e->conn, item_id, on_res, &x));
    return x;
}

/* ---- Redis as it is ----------------------------------------------------- */

static redisReply *cmd(struct env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(e->r, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "redis: %s", e->r->errstr);
    return r;
}

static long long rint_(struct env *e, const char *fmt, uint64_t id)
{
    redisReply *r = cmd(e, fmt, id);
    long long v = -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r->type == REDIS_REPLY_NIL)
        v = -1;
    freeReplyObject(r);
    return v;
}

static long long stock_left(struct env *e, uint64_t id)
{
    return rint_(e, "GET t:{item:%" PRIu64 "}:stock", id);
}

static long long meta_field(struct env *e, uint64_t id, const char *field)
{
    char fmt[96];
    snprintf(fmt, sizeof(fmt), "HGET t:{item:%%" PRIu64 "}:meta %s", field);
    return rint_(e, fmt, id);
}

static long long hlen(struct env *e, const char *what, uint64_t id)
{
    char fmt[96];
    snprintf(fmt, sizeof(fmt), "HLEN t:{item:%%" PRIu64 "}:%s", what);
    return rint_(e, fmt, id);
}

static long long xlen(struct env *e, uint64_t id)
{
    return rint_(e, "XLEN t:{item:%" PRIu64 "}:log", id);
}

static long long held(struct env *e, uint64_t id, uint64_t user)
{
    redisReply *r = cmd(e, "HGET t:{item:%" PRIu64 "}:buyers %" PRIu64, id, user);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* ---- cases: the verbs --------------------------------------------------- */

START_TEST(publish_then_query)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(101, 10, 1);
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.initial, 10);
    ck_assert_int_eq(x.r.remaining, 10);
    ck_assert_int_eq(x.r.state, SK_STOCK_OPEN);

    x = query(&e, 101);
    OK(x);
    ck_assert_int_eq(x.r.initial, 10);
    ck_assert_int_eq(x.r.remaining, 10);
    ck_assert_int_eq(x.r.state, SK_STOCK_OPEN);

    /* The key layout of docs/plugins.md. */
    ck_assert_int_eq(stock_left(&e, 101), 10);
    ck_assert_int_eq(meta_field(&e, 101, "activity_id"), ACT);
    ck_assert_int_eq(meta_field(&e, 101, "limit"), 1);
    ck_assert_int_eq(meta_field(&e, 101, "price_cents"), 990);
    ck_assert_int_eq(meta_field(&e, 101, "starts_at_ms"), it.starts_at_ms);
    ck_assert_int_eq(meta_field(&e, 101, "ends_at_ms"), it.ends_at_ms);
    ck_assert_int_eq(meta_field(&e, 101, "initial"), 10);
    redisReply *r = cmd(&e, "HGET t:{item:101}:meta state");
    ck_assert_str_eq(r->str, "open");
    freeReplyObject(r);

    x = query(&e, 999);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "item 999 is not published");
    down(&e);
}
END_TEST

START_TEST(publish_refuses_bad_items)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(102, 0, 1);
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "item 102: stock must be more than 0") != NULL, "%s", x.err);
    it = item(102, 5, 0);
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "per-user limit") != NULL, "%s", x.err);
    it = item(102, 5, 1);
    it.ends_at_ms = it.starts_at_ms;
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "must end after it starts") != NULL, "%s", x.err);
    it = item(102, 5, 1);
    it.price_cents = -1;
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "price") != NULL, "%s", x.err);
    /* Nothing reached Redis. */
    redisReply *r = cmd(&e, "EXISTS t:{item:102}:meta t:{item:102}:stock");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    down(&e);
}
END_TEST

START_TEST(publish_twice_never_resets_stock)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(103, 10, 1);
    publish(&e, &it);
    for (uint64_t u = 1; u <= 3; u++) {
        x = reserve(&e, 103, u, 0);
        OK(x);
        ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    }
    /* Re-published with other numbers (a retry, a restarted scheduler, an edit). */
    it.stock = 50;
    it.per_user_limit = 2;
    it.price_cents = 500;
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.initial, 10);
    ck_assert_int_eq(x.r.remaining, 7);
    ck_assert_int_eq(stock_left(&e, 103), 7);
    ck_assert_int_eq(meta_field(&e, 103, "initial"), 10);
    ck_assert_int_eq(meta_field(&e, 103, "limit"), 2);
    ck_assert_int_eq(meta_field(&e, 103, "price_cents"), 500);
    ck_assert_int_eq(hlen(&e, "buyers", 103), 3);

    /* Nor does it reopen a paused item. */
    RUN(&e, x, e.ops->set_state(e.conn, 103, SK_STOCK_PAUSED, on_res, &x));
    OK(x);
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.state, SK_STOCK_PAUSED);
    ck_assert_int_eq(stock_left(&e, 103), 7);
    down(&e);
}
END_TEST

START_TEST(reserve_until_sold_out)
{
    struct env e;
    up(&e, "");
    struct sk_stock_item it = item(104, 5, 1);
    publish(&e, &it);
    int reserved = 0, sold_out = 0;
    for (uint64_t u = 1; u <= 8; u++) {
        struct res x = reserve(&e, 104, u, 0);
        OK(x);
        if (x.r.outcome == SK_RESERVED) {
            reserved++;
            ck_assert_int_eq(x.r.remaining, 5 - reserved);
            ck_assert_int_eq(x.r.user_count, 1);
            ck_assert_int_eq(x.r.initial, 5);
        } else {
            ck_assert_int_eq(x.r.outcome, SK_SOLD_OUT);
            ck_assert_int_eq(x.r.remaining, 0);
            ck_assert_int_eq(x.r.user_count, 0);
            sold_out++;
        }
        /* Exactly the first five get a unit. */
        ck_assert_int_eq(x.r.outcome, u <= 5 ? SK_RESERVED : SK_SOLD_OUT);
    }
    ck_assert_int_eq(reserved, 5);
    ck_assert_int_eq(sold_out, 3);
    ck_assert_int_eq(stock_left(&e, 104), 0);
    ck_assert_int_eq(hlen(&e, "buyers", 104), 5);
    ck_assert_int_eq(hlen(&e, "orders", 104), 5);
    ck_assert_int_eq(xlen(&e, 104), 5);
    down(&e);
}
END_TEST

START_TEST(per_user_limit)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item one = item(105, 10, 1), two = item(106, 10, 2);
    publish(&e, &one);
    publish(&e, &two);

    x = reserve(&e, 105, 7, 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.r.user_count, 1);
    x = reserve(&e, 105, 7, 2);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_LIMIT_REACHED);
    ck_assert_int_eq(x.r.user_count, 1);
    ck_assert_int_eq(x.r.remaining, 9);
    ck_assert_int_eq(stock_left(&e, 105), 9);
    ck_assert_int_eq(held(&e, 105, 7), 1);

    x = reserve(&e, 106, 7, 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.r.user_count, 1);
    x = reserve(&e, 106, 7, 2);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.r.user_count, 2);
    x = reserve(&e, 106, 7, 3);
    ck_assert_int_eq(x.r.outcome, SK_LIMIT_REACHED);
    ck_assert_int_eq(x.r.user_count, 2);
    ck_assert_int_eq(stock_left(&e, 106), 8);
    ck_assert_int_eq(held(&e, 106, 7), 2);
    /* Another buyer is not affected. */
    x = reserve(&e, 106, 8, 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    down(&e);
}
END_TEST

START_TEST(reserve_retry_takes_one_unit)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(107, 10, 3);
    publish(&e, &it);
    x = reserve(&e, 107, 9, 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    /* The same order number again (the host retrying after a timeout). */
    x = reserve(&e, 107, 9, 1);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.r.remaining, 9);
    ck_assert_int_eq(x.r.user_count, 1);
    ck_assert_int_eq(stock_left(&e, 107), 9);
    ck_assert_int_eq(xlen(&e, 107), 1);
    /* Someone else's order number is refused and changes nothing. */
    struct sk_reserve_req req = {.activity_id = ACT,
                                 .item_id = 107,
                                 .user_id = 10,
                                 .order_no = "o107-9-1",
                                 .now_ms = sk_now_ms(),
                                 .expires_at_ms = sk_now_ms() + 1000};
    RUN(&e, x, e.ops->reserve(e.conn, &req, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "order o107-9-1 of item 107 belongs to another buyer");
    ck_assert_int_eq(stock_left(&e, 107), 9);
    ck_assert_int_eq(held(&e, 107, 10), 0);
    /* A missing or oversized order number never reaches Redis. */
    req.order_no = "";
    RUN(&e, x, e.ops->reserve(e.conn, &req, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "order number must be 1 to 127 bytes"), "%s", x.err);
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req.order_no = big;
    RUN(&e, x, e.ops->reserve(e.conn, &req, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "order number must be 1 to 127 bytes"), "%s", x.err);
    ck_assert_int_eq(stock_left(&e, 107), 9);
    down(&e);
}
END_TEST

START_TEST(sale_window)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(108, 10, 5);
    it.starts_at_ms = 1800000000000LL;
    it.ends_at_ms = 1800000600000LL;
    publish(&e, &it);
    x = reserve_at(&e, 108, 1, 1, it.starts_at_ms - 1);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_NOT_STARTED);
    x = reserve_at(&e, 108, 1, 2, it.ends_at_ms);
    ck_assert_int_eq(x.r.outcome, SK_ENDED);
    x = reserve_at(&e, 108, 1, 3, it.ends_at_ms + 86400000);
    ck_assert_int_eq(x.r.outcome, SK_ENDED);
    ck_assert_int_eq(stock_left(&e, 108), 10);
    ck_assert_int_eq(hlen(&e, "buyers", 108), 0);
    ck_assert_int_eq(xlen(&e, 108), 0);
    /* [starts_at, ends_at): both edges. */
    x = reserve_at(&e, 108, 1, 4, it.starts_at_ms);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    x = reserve_at(&e, 108, 1, 5, it.ends_at_ms - 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(stock_left(&e, 108), 8);
    down(&e);
}
END_TEST

START_TEST(paused_and_closed)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(109, 10, 5);
    publish(&e, &it);
    x = reserve(&e, 109, 1, 1);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);

    RUN(&e, x, e.ops->set_state(e.conn, 109, SK_STOCK_PAUSED, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.state, SK_STOCK_PAUSED);
    ck_assert_int_eq(x.r.remaining, 9);
    x = reserve(&e, 109, 2, 1);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_PAUSED);
    ck_assert_int_eq(x.r.state, SK_STOCK_PAUSED);
    /* The kill switch changes nothing else. */
    ck_assert_int_eq(stock_left(&e, 109), 9);
    ck_assert_int_eq(hlen(&e, "buyers", 109), 1);
    ck_assert_int_eq(xlen(&e, 109), 1);
    ck_assert_int_eq(query(&e, 109).r.state, SK_STOCK_PAUSED);

    RUN(&e, x, e.ops->set_state(e.conn, 109, SK_STOCK_OPEN, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.state, SK_STOCK_OPEN);
    x = reserve(&e, 109, 2, 2);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);

    RUN(&e, x, e.ops->set_state(e.conn, 109, SK_STOCK_CLOSED, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.state, SK_STOCK_CLOSED);
    x = reserve(&e, 109, 3, 1);
    ck_assert_int_eq(x.r.outcome, SK_NOT_ON_SALE);
    ck_assert_int_eq(stock_left(&e, 109), 8);
    /* Closed is for good. */
    RUN(&e, x, e.ops->set_state(e.conn, 109, SK_STOCK_OPEN, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "item 109 is closed; a closed item cannot be reopened");
    ck_assert_int_eq(query(&e, 109).r.state, SK_STOCK_CLOSED);
    RUN(&e, x, e.ops->set_state(e.conn, 109, SK_STOCK_CLOSED, on_res, &x));
    OK(x);

    RUN(&e, x, e.ops->set_state(e.conn, 9109, SK_STOCK_PAUSED, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "item 9109 is not published");
    RUN(&e, x, e.ops->set_state(e.conn, 109, (enum sk_stock_state)7, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "unknown sale state 7") != NULL, "%s", x.err);
    down(&e);
}
END_TEST

START_TEST(not_on_sale)
{
    struct env e;
    struct res x;
    up(&e, "");
    x = reserve(&e, 110, 1, 1);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_NOT_ON_SALE);
    /* Published for another activity. */
    struct sk_stock_item it = item(110, 10, 1);
    it.activity_id = ACT + 1;
    publish(&e, &it);
    x = reserve(&e, 110, 1, 2);
    ck_assert_int_eq(x.r.outcome, SK_NOT_ON_SALE);
    ck_assert_int_eq(stock_left(&e, 110), 10);
    redisReply *r = cmd(&e, "EXISTS t:{item:110}:buyers t:{item:110}:orders t:{item:110}:log");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    down(&e);
}
END_TEST

START_TEST(add_units_adds)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(111, 2, 1);
    publish(&e, &it);
    ck_assert_int_eq(reserve(&e, 111, 1, 1).r.outcome, SK_RESERVED);
    ck_assert_int_eq(reserve(&e, 111, 2, 1).r.outcome, SK_RESERVED);
    ck_assert_int_eq(reserve(&e, 111, 3, 1).r.outcome, SK_SOLD_OUT);

    RUN(&e, x, e.ops->add_units(e.conn, 111, 3, on_res, &x));
    OK(x);
    ck_assert_int_eq(x.r.initial, 5);
    ck_assert_int_eq(x.r.remaining, 3);
    ck_assert_int_eq(meta_field(&e, 111, "initial"), 5);
    x = reserve(&e, 111, 3, 2);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.r.remaining, 2);
    /* reserved + left = initial */
    ck_assert_int_eq(hlen(&e, "orders", 111) + stock_left(&e, 111), meta_field(&e, 111, "initial"));

    RUN(&e, x, e.ops->add_units(e.conn, 111, 0, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "units to add must be more than 0, not 0"), "%s", x.err);
    RUN(&e, x, e.ops->add_units(e.conn, 111, -4, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "not -4"), "%s", x.err);
    ck_assert_int_eq(stock_left(&e, 111), 2);
    ck_assert_int_eq(meta_field(&e, 111, "initial"), 5);
    RUN(&e, x, e.ops->add_units(e.conn, 9111, 5, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "item 9111 is not published");
    ck_assert_int_eq(stock_left(&e, 9111), -1);
    down(&e);
}
END_TEST

START_TEST(release_exactly_once)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(112, 3, 1);
    publish(&e, &it);
    ck_assert_int_eq(reserve(&e, 112, 5, 1).r.outcome, SK_RESERVED);
    ck_assert_int_eq(reserve(&e, 112, 6, 1).r.outcome, SK_RESERVED);
    ck_assert_int_eq(stock_left(&e, 112), 1);

    x = release(&e, 112, 5, "o112-5-1");
    OK(x);
    ck_assert_int_eq(x.r.changed, 1);
    ck_assert_int_eq(x.r.remaining, 2);
    ck_assert_int_eq(x.r.user_count, 0);
    ck_assert_int_eq(x.r.initial, 3);
    ck_assert_int_eq(hlen(&e, "buyers", 112), 1); /* the buyer's field is gone at 0 */
    ck_assert_int_eq(hlen(&e, "orders", 112), 1);
    /* Again, and again: nothing more comes back. */
    for (int i = 0; i < 2; i++) {
        x = release(&e, 112, 5, "o112-5-1");
        OK(x);
        ck_assert_int_eq(x.r.changed, 0);
        ck_assert_int_eq(x.r.remaining, 2);
    }
    ck_assert_int_eq(stock_left(&e, 112), 2);
    /* An order nobody holds: a no-op. */
    x = release(&e, 112, 5, "never-reserved");
    OK(x);
    ck_assert_int_eq(x.r.changed, 0);
    ck_assert_int_eq(stock_left(&e, 112), 2);
    /* Another buyer's order: refused, nothing changes. */
    x = release(&e, 112, 5, "o112-6-1");
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "order o112-6-1 of item 112 belongs to another buyer");
    ck_assert_int_eq(stock_left(&e, 112), 2);
    ck_assert_int_eq(held(&e, 112, 6), 1);
    /* The freed slot can buy again (limit 1). */
    ck_assert_int_eq(reserve(&e, 112, 5, 2).r.outcome, SK_RESERVED);
    ck_assert_int_eq(hlen(&e, "orders", 112) + stock_left(&e, 112), 3);
    down(&e);
}
END_TEST

static struct res get_order(struct env *e, uint64_t item_id, const char *order_no)
{
    struct res x;
    RUN(e, x, e->ops->get_order(e->conn, item_id, order_no, on_res, &x));
    return x;
}

/* A held order can be read back; the buyer's seq grows with every unit and is never
 * reused after a release, so (activity, item, user, seq) names one unit for good. */
START_TEST(get_order_and_seq)
{
    struct env e;
    struct res x;
    up(&e, "");
    struct sk_stock_item it = item(114, 5, 2);
    publish(&e, &it);
    int64_t now = sk_now_ms();
    x = reserve_at(&e, 114, 9, 1, now);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert(x.has_order);
    ck_assert_int_eq(x.order.seq, 1);

    x = get_order(&e, 114, "o114-9-1");
    OK(x);
    ck_assert(x.has_order);
    ck_assert_int_eq(x.order.user_id, 9);
    ck_assert_int_eq(x.order.activity_id, ACT);
    ck_assert_int_eq(x.order.item_id, 114);
    ck_assert_int_eq(x.order.seq, 1);
    ck_assert_int_eq(x.order.price_cents, 990);
    ck_assert_int_eq(x.order.reserved_at_ms, now);
    ck_assert_int_eq(x.order.expires_at_ms, now + 900000);

    /* a retry with the same number answers the same order, no second unit */
    x = reserve_at(&e, 114, 9, 1, now + 5);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.order.seq, 1);
    ck_assert_int_eq(x.order.reserved_at_ms, now);
    ck_assert_int_eq(stock_left(&e, 114), 4);

    ck_assert_int_eq(reserve(&e, 114, 9, 2).order.seq, 2);
    x = release(&e, 114, 9, "o114-9-1");
    ck_assert_int_eq(x.r.changed, 1);
    x = get_order(&e, 114, "o114-9-1");
    OK(x);
    ck_assert(!x.has_order); /* released: the store no longer holds it */
    /* the freed slot buys again with a new seq, never 1 again */
    x = reserve(&e, 114, 9, 3);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    ck_assert_int_eq(x.order.seq, 3);

    x = get_order(&e, 114, "never-reserved");
    OK(x);
    ck_assert(!x.has_order);
    x = get_order(&e, 999, "o999-1-1"); /* an item never published */
    OK(x);
    ck_assert(!x.has_order);
    down(&e);
}
END_TEST

START_TEST(reservation_log)
{
    struct env e;
    up(&e, "");
    struct sk_stock_item it = item(113, 2, 1);
    publish(&e, &it);
    int64_t now = sk_now_ms();
    ck_assert_int_eq(reserve_at(&e, 113, 21, 1, now).r.outcome, SK_RESERVED);
    ck_assert_int_eq(reserve_at(&e, 113, 21, 2, now).r.outcome, SK_LIMIT_REACHED);
    ck_assert_int_eq(reserve_at(&e, 113, 22, 1, now + 1).r.outcome, SK_RESERVED);
    ck_assert_int_eq(reserve_at(&e, 113, 23, 1, now + 2).r.outcome, SK_SOLD_OUT);

    redisReply *r = cmd(&e, "XRANGE t:{item:113}:log - +");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 2); /* refusals leave no entry */
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        char want_order[32], want_user[32], want_at[32], want_exp[32];
        snprintf(want_order, sizeof(want_order), "o113-%zu-1", 21 + i);
        snprintf(want_user, sizeof(want_user), "%zu", 21 + i);
        snprintf(want_at, sizeof(want_at), "%" PRId64, now + (int64_t)i);
        snprintf(want_exp, sizeof(want_exp), "%" PRId64, now + (int64_t)i + 900000);
        const char *want[][2] = {{"order_no", want_order}, {"user_id", want_user},       {"activity_id", "77"},
                                 {"item_id", "113"},       {"seq", "1"},                 {"price_cents", "990"},
                                 {"reserved_at_ms", want_at}, {"expires_at_ms", want_exp}};
        ck_assert_int_eq(fields->elements, 16);
        for (size_t f = 0; f < 8; f++) {
            ck_assert_str_eq(fields->element[2 * f]->str, want[f][0]);
            ck_assert_str_eq(fields->element[2 * f + 1]->str, want[f][1]);
        }
    }
    freeReplyObject(r);
    down(&e);
}
END_TEST

/* ---- cases: many at once ------------------------------------------------ */

#define BUYERS 2000
#define UNITS 300

struct tally {
    int done, reserved, sold_out, other, failed;
    char seen[UNITS]; /* remaining values answered to winners: each exactly once */
    int dup;
    char err[SK_ERRLEN];
};

static void on_tally(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct tally *t = arg;
    t->done++;
    if (status != SK_OK) {
        t->failed++;
        snprintf(t->err, sizeof(t->err), "%s", err);
        return;
    }
    if (reply->outcome == SK_RESERVED) {
        t->reserved++;
        if (reply->remaining < 0 || reply->remaining >= UNITS || t->seen[reply->remaining]++)
            t->dup++;
    } else if (reply->outcome == SK_SOLD_OUT) {
        t->sold_out++;
    } else {
        t->other++;
    }
}

static int tally_done(const struct tally *t)
{
    return t->done == BUYERS;
}

START_TEST(many_in_flight_never_oversell)
{
    static struct tally t;
    static char order_nos[BUYERS][24];
    struct env e;
    up(&e, "\"command_timeout_ms\":30000");
    struct sk_stock_item it = item(114, UNITS, 1);
    publish(&e, &it);
    memset(&t, 0, sizeof(t));
    int64_t now = sk_now_ms();
    for (int i = 0; i < BUYERS; i++) {
        snprintf(order_nos[i], sizeof(order_nos[i]), "c%d", i);
        struct sk_reserve_req req = {.activity_id = ACT,
                                     .item_id = 114,
                                     .user_id = 5000 + (uint64_t)i,
                                     .order_no = order_nos[i],
                                     .now_ms = now,
                                     .expires_at_ms = now + 900000};
        ck_assert_int_eq(e.ops->reserve(e.conn, &req, on_tally, &t), SK_OK);
    }
    ck_assert_int_eq(t.done, 0);
    e.expired = 0;
    uv_timer_start(&e.guard, on_guard, 60000, 0);
    while (!tally_done(&t) && !e.expired)
        uv_run(&e.loop, UV_RUN_ONCE);
    uv_timer_stop(&e.guard);
    ck_assert_msg(tally_done(&t), "only %d of %d answers", t.done, BUYERS);
    ck_assert_msg(t.failed == 0, "%d failed: %s", t.failed, t.err);
    ck_assert_int_eq(t.reserved, UNITS);
    ck_assert_int_eq(t.sold_out, BUYERS - UNITS);
    ck_assert_int_eq(t.other, 0);
    ck_assert_int_eq(t.dup, 0);
    ck_assert_int_eq(stock_left(&e, 114), 0);
    ck_assert_int_eq(hlen(&e, "buyers", 114), UNITS);
    ck_assert_int_eq(hlen(&e, "orders", 114), UNITS);
    ck_assert_int_eq(xlen(&e, 114), UNITS);
    down(&e);
}
END_TEST

START_TEST(detach_fails_pending)
{
    struct env e;
    struct res xs[50];
    up(&e, "");
    for (int i = 0; i < 50; i++) {
        memset(&xs[i], 0, sizeof(xs[i]));
        ck_assert_int_eq(e.ops->query(e.conn, 115, on_res, &xs[i]), SK_OK);
    }
    /* Detach before the loop ran: every callback runs, with SK_ERR. */
    e.ops->detach(e.conn);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(xs[i].calls, 1);
        ck_assert_int_eq(xs[i].status, SK_ERR);
        ck_assert_str_eq(xs[i].err, "redis connection closed");
    }
    env_end(&e);
}
END_TEST

/* Detaching from inside a verb's callback (the daemon does so when a loop stops):
 * the other commands in flight fail once each, and nothing is used after free. */
struct chain {
    struct env *e;
    int calls, ok, closed;
};

static void on_chain(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct chain *ch = arg;
    ch->calls++;
    if (status == SK_OK && ch->ok++ == 0) {
        ch->e->ops->detach(ch->e->conn);
        ch->e->conn = NULL;
    } else if (status == SK_ERR && strcmp(err, "redis connection closed") == 0) {
        ch->closed++;
    }
}

START_TEST(detach_from_callback)
{
    struct env e;
    struct chain ch = {.e = &e};
    up(&e, "");
    struct sk_stock_item it = item(121, 5, 1);
    publish(&e, &it);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(e.ops->query(e.conn, 121, on_chain, &ch), SK_OK);
    e.expired = 0;
    uv_timer_start(&e.guard, on_guard, 5000, 0);
    while (ch.calls < 20 && !e.expired)
        uv_run(&e.loop, UV_RUN_ONCE);
    uv_timer_stop(&e.guard);
    ck_assert_int_eq(ch.calls, 20);
    /* Replies already read with the first one may be delivered; the rest fail. */
    ck_assert_int_ge(ch.ok, 1);
    ck_assert_int_eq(ch.ok + ch.closed, 20);
    env_end(&e);
}
END_TEST

/* ---- cases: reservations batched per item and turn ---------------------- */

/* Start reservation k of a turn (order number `no`), without running the loop. */
static void start_reserve(struct env *e, uint64_t item_id, uint64_t user, const char *no, struct res *x)
{
    int64_t now = sk_now_ms();
    struct sk_reserve_req req = {
        .activity_id = ACT, .item_id = item_id, .user_id = user, .order_no = no, .now_ms = now,
        .expires_at_ms = now + 900000};
    memset(x, 0, sizeof(*x));
    ck_assert_int_eq(e->ops->reserve(e->conn, &req, on_res, x), SK_OK);
}

/* Every one of xs ran its callback once, with "redis connection closed". */
static void all_closed(const struct res *xs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(xs[i].calls, 1);
        ck_assert_int_eq(xs[i].status, SK_ERR);
        ck_assert_str_eq(xs[i].err, "redis connection closed");
    }
}

static void run_until_all(struct env *e, struct res *xs, size_t n)
{
    size_t done = 0;
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, 5000, 0);
    while (!e->expired) {
        done = 0;
        for (size_t i = 0; i < n; i++)
            done += xs[i].done != 0;
        if (done == n)
            break;
        uv_run(&e->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&e->guard);
    ck_assert_msg(done == n, "only %zu of %zu answers within 5 s", done, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(xs[i].calls, 1);
}

/* Everything one turn brings for one item is one script call, and each buyer gets
 * the answer that one call per reservation, in the same order, would have given. */
START_TEST(batch_in_one_turn)
{
    struct env e;
    struct res xs[8];
    up(&e, "");
    struct sk_stock_item it = item(130, 3, 2);
    publish(&e, &it);
    int64_t calls = counter("reserve_calls_total");
    start_reserve(&e, 130, 1, "b130-1a", &xs[0]); /* reserved: 2 left */
    start_reserve(&e, 130, 1, "b130-1b", &xs[1]); /* reserved: 1 left, buyer 1 at the limit */
    start_reserve(&e, 130, 1, "b130-1c", &xs[2]); /* limit_reached */
    start_reserve(&e, 130, 2, "b130-2a", &xs[3]); /* reserved: 0 left */
    start_reserve(&e, 130, 3, "b130-3a", &xs[4]); /* sold_out */
    start_reserve(&e, 130, 1, "b130-1a", &xs[5]); /* a retry within the batch: the same order again */
    start_reserve(&e, 130, 4, "b130-2a", &xs[6]); /* another buyer's order number */
    start_reserve(&e, 130, 2, "b130-2a", &xs[7]); /* buyer 2's retry */
    for (int i = 0; i < 8; i++)
        ck_assert_msg(xs[i].calls == 0, "callback %d ran inside the verb call", i);
    run_until_all(&e, xs, 8);
    ck_assert_int_eq(counter("reserve_calls_total") - calls, 1); /* counted by the plugin as it sends */

    OK(xs[0]);
    ck_assert_int_eq(xs[0].r.outcome, SK_RESERVED);
    ck_assert_int_eq(xs[0].r.remaining, 2);
    ck_assert_int_eq(xs[0].r.user_count, 1);
    ck_assert_int_eq(xs[0].r.initial, 3);
    ck_assert_int_eq(xs[0].r.state, SK_STOCK_OPEN);
    ck_assert(xs[0].has_order);
    ck_assert_int_eq(xs[0].order.user_id, 1);
    ck_assert_int_eq(xs[0].order.activity_id, ACT);
    ck_assert_int_eq(xs[0].order.item_id, 130);
    ck_assert_int_eq(xs[0].order.seq, 1);
    ck_assert_int_eq(xs[0].order.price_cents, 990);
    ck_assert_int_gt(xs[0].order.expires_at_ms, xs[0].order.reserved_at_ms);

    OK(xs[1]);
    ck_assert_int_eq(xs[1].r.outcome, SK_RESERVED);
    ck_assert_int_eq(xs[1].r.remaining, 1);
    ck_assert_int_eq(xs[1].r.user_count, 2);
    ck_assert_int_eq(xs[1].order.seq, 2);

    OK(xs[2]);
    ck_assert_int_eq(xs[2].r.outcome, SK_LIMIT_REACHED);
    ck_assert_int_eq(xs[2].r.user_count, 2);
    ck_assert(!xs[2].has_order);

    OK(xs[3]);
    ck_assert_int_eq(xs[3].r.outcome, SK_RESERVED);
    ck_assert_int_eq(xs[3].r.remaining, 0);
    ck_assert_int_eq(xs[3].order.user_id, 2);
    ck_assert_int_eq(xs[3].order.seq, 1);

    OK(xs[4]);
    ck_assert_int_eq(xs[4].r.outcome, SK_SOLD_OUT);
    ck_assert_int_eq(xs[4].r.remaining, 0);

    OK(xs[5]);
    ck_assert_int_eq(xs[5].r.outcome, SK_RESERVED);
    ck_assert_int_eq(xs[5].order.seq, 1);
    ck_assert_int_eq(xs[5].order.reserved_at_ms, xs[0].order.reserved_at_ms);
    ck_assert_int_eq(xs[5].order.expires_at_ms, xs[0].order.expires_at_ms);

    ck_assert_int_eq(xs[6].status, SK_ERR);
    ck_assert_str_eq(xs[6].err, "order b130-2a of item 130 belongs to another buyer");

    OK(xs[7]);
    ck_assert_int_eq(xs[7].r.outcome, SK_RESERVED);
    ck_assert_int_eq(xs[7].order.seq, 1);

    /* In Redis: three units taken, once each. */
    ck_assert_int_eq(stock_left(&e, 130), 0);
    ck_assert_int_eq(held(&e, 130, 1), 2);
    ck_assert_int_eq(held(&e, 130, 2), 1);
    ck_assert_int_eq(held(&e, 130, 3), 0);
    ck_assert_int_eq(held(&e, 130, 4), 0);
    ck_assert_int_eq(hlen(&e, "orders", 130), 3);
    ck_assert_int_eq(hlen(&e, "seq", 130), 2);
    ck_assert_int_eq(xlen(&e, 130), 3);
    down(&e);
}
END_TEST

/* reserve_batch caps a call; two items never share one; each answer is its own. */
START_TEST(batch_cap_and_items)
{
    struct env e;
    struct res xs[14];
    char nos[14][32];
    up(&e, "\"reserve_batch\":4");
    struct sk_stock_item a = item(131, 100, 1), b = item(132, 2, 1);
    publish(&e, &a);
    publish(&e, &b);
    int64_t before_calls = counter("reserve_calls_total"), before_batched = counter("reserve_batched_total");
    /* Ten on item 131 (batches of 4, 4, 2), four on item 132 interleaved (4: one call). */
    for (int i = 0; i < 14; i++) {
        uint64_t id = i % 3 == 2 && i < 12 ? 132 : 131;
        snprintf(nos[i], sizeof(nos[i]), "c%" PRIu64 "-%d", id, i);
        start_reserve(&e, id, 100 + (uint64_t)i, nos[i], &xs[i]);
    }
    run_until_all(&e, xs, 14);
    ck_assert_int_eq(counter("reserve_calls_total") - before_calls, 4);
    ck_assert_int_eq(counter("reserve_batched_total") - before_batched, 14);
    int on132 = 0, won132 = 0;
    for (int i = 0; i < 14; i++) {
        OK(xs[i]);
        if (i % 3 == 2 && i < 12) {
            on132++;
            /* the first two buyers of item 132 win, in the order they came */
            ck_assert_int_eq(xs[i].r.outcome, on132 <= 2 ? SK_RESERVED : SK_SOLD_OUT);
            won132 += xs[i].r.outcome == SK_RESERVED;
            if (xs[i].has_order)
                ck_assert_int_eq(xs[i].order.item_id, 132);
        } else {
            ck_assert_int_eq(xs[i].r.outcome, SK_RESERVED);
            ck_assert_int_eq(xs[i].order.item_id, 131);
            ck_assert_int_eq(xs[i].order.user_id, 100 + (uint64_t)i);
        }
    }
    ck_assert_int_eq(on132, 4);
    ck_assert_int_eq(won132, 2);
    ck_assert_int_eq(stock_left(&e, 131), 90);
    ck_assert_int_eq(xlen(&e, 131), 10);
    ck_assert_int_eq(stock_left(&e, 132), 0);
    ck_assert_int_eq(xlen(&e, 132), 2);
    down(&e);
}
END_TEST

/* A batch that Redis runs after its deadline takes nothing for any of its buyers:
 * the daemon has told them it failed. CLIENT PAUSE holds it past the deadline (half
 * the command timeout) but not past the timeout, so the reply does come back. */
START_TEST(batch_after_deadline_takes_nothing)
{
    struct env e;
    struct res xs[3];
    up(&e, "\"command_timeout_ms\":1600");
    struct sk_stock_item it = item(133, 10, 5);
    publish(&e, &it);
    redisReply *r = cmd(&e, "CLIENT PAUSE 1200 WRITE");
    freeReplyObject(r);
    start_reserve(&e, 133, 1, "d133-1", &xs[0]);
    start_reserve(&e, 133, 2, "d133-2", &xs[1]);
    start_reserve(&e, 133, 1, "d133-3", &xs[2]);
    run_until_all(&e, xs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(xs[i].status, SK_ERR);
        ck_assert_str_eq(xs[i].err, "redis ran the reservation of item 133 after its deadline; nothing was taken");
    }
    ck_assert_int_eq(stock_left(&e, 133), 10);
    ck_assert_int_eq(hlen(&e, "buyers", 133), 0);
    ck_assert_int_eq(xlen(&e, 133), 0);
    /* and the connection goes on: the next one is on time */
    struct res x = reserve(&e, 133, 1, 9);
    OK(x);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    down(&e);
}
END_TEST

/* While an item's calls are in flight (reserve_inflight of them), the reservations
 * of the next turns wait and then go out together, as one call, when an answer is
 * back (CLIENT PAUSE keeps the first calls in Redis for a while). Another item is not
 * held back. */
static void waits_for_calls_in_flight(unsigned inflight)
{
    struct env e;
    struct res xs[7];
    char nos[7][16], conf[64];
    snprintf(conf, sizeof(conf), "\"reserve_inflight\":%u", inflight);
    up(&e, conf);
    struct sk_stock_item a = item(135, 100, 5), b = item(136, 100, 5);
    publish(&e, &a);
    publish(&e, &b);
    int64_t calls = counter("reserve_calls_total"), batched = counter("reserve_batched_total");
    redisReply *r = cmd(&e, "CLIENT PAUSE 300 WRITE");
    freeReplyObject(r);
    for (int i = 0; i < 6; i++) { /* six turns, one reservation each */
        snprintf(nos[i], sizeof(nos[i]), "w135-%d", i);
        start_reserve(&e, 135, 1 + (uint64_t)i, nos[i], &xs[i]);
        run_for(&e, 15);
        /* the first `inflight` turns each send a call (held in Redis); the rest wait */
        ck_assert_int_eq(counter("reserve_calls_total") - calls, i < (int)inflight ? i + 1 : (int)inflight);
    }
    ck_assert_int_eq(xs[0].calls, 0);
    /* another item goes at once (into the same pause) */
    start_reserve(&e, 136, 1, "w136-0", &xs[6]);
    run_for(&e, 20);
    ck_assert_int_eq(counter("reserve_calls_total") - calls, (int)inflight + 1);
    run_until_all(&e, xs, 7);
    /* the waiting turns of item 135 went as one call when the first answer came */
    ck_assert_int_eq(counter("reserve_calls_total") - calls, (int)inflight + 2);
    ck_assert_int_eq(counter("reserve_batched_total") - batched, 7);
    for (int i = 0; i < 7; i++) {
        OK(xs[i]);
        ck_assert_int_eq(xs[i].r.outcome, SK_RESERVED);
    }
    ck_assert_int_eq(stock_left(&e, 135), 94);
    ck_assert_int_eq(xlen(&e, 135), 6);
    ck_assert_int_eq(stock_left(&e, 136), 99);
    down(&e);
}

START_TEST(batch_waits_for_one_call_in_flight)
{
    waits_for_calls_in_flight(1);
}
END_TEST

START_TEST(batch_waits_for_two_calls_in_flight)
{
    waits_for_calls_in_flight(2);
}
END_TEST

/* Detaching while a call is in flight and the next batch waits for it: both fail
 * once, and nothing is used after the set is gone. */
START_TEST(batch_detach_with_call_in_flight)
{
    struct env e;
    struct res xs[3];
    up(&e, "\"reserve_inflight\":1");
    struct sk_stock_item it = item(137, 10, 5);
    publish(&e, &it);
    redisReply *r = cmd(&e, "CLIENT PAUSE 300 WRITE");
    freeReplyObject(r);
    start_reserve(&e, 137, 1, "f137-0", &xs[0]);
    run_for(&e, 20);
    start_reserve(&e, 137, 2, "f137-1", &xs[1]);
    run_for(&e, 10);
    start_reserve(&e, 137, 3, "f137-2", &xs[2]);
    e.ops->detach(e.conn);
    all_closed(xs, 3);
    env_end(&e);
}
END_TEST

/* Detaching from inside a reservation's callback (on_chain, above) while the item's
 * next batch waits for that very answer: the waiting reservations fail once each,
 * nothing is sent after the set is gone, nothing leaks (the ASan build runs this too). */
START_TEST(batch_detach_from_callback)
{
    struct env e;
    struct chain d = {.e = &e};
    up(&e, "\"reserve_inflight\":1");
    struct sk_stock_item it = item(138, 10, 5);
    publish(&e, &it);
    redisReply *r = cmd(&e, "CLIENT PAUSE 200 WRITE");
    freeReplyObject(r);
    int64_t now = sk_now_ms();
    const char *nos[4] = {"g138-0", "g138-1", "g138-2", "g138-3"};
    for (int i = 0; i < 4; i++) {
        struct sk_reserve_req req = {.activity_id = ACT, .item_id = 138, .user_id = 1 + (uint64_t)i,
                                     .order_no = nos[i], .now_ms = now, .expires_at_ms = now + 900000};
        ck_assert_int_eq(e.ops->reserve(e.conn, &req, on_chain, &d), SK_OK);
        run_for(&e, 15); /* one turn each: the first is sent, the others wait for it */
    }
    e.expired = 0;
    uv_timer_start(&e.guard, on_guard, 5000, 0);
    while (d.calls < 4 && !e.expired)
        uv_run(&e.loop, UV_RUN_ONCE);
    uv_timer_stop(&e.guard);
    ck_assert_int_eq(d.calls, 4);
    ck_assert_int_eq(d.ok, 1);
    ck_assert_int_eq(d.closed, 3);
    ck_assert_int_eq(stock_left(&e, 138), 9);
    env_end(&e);
}
END_TEST

/* Detaching before the turn ends fails the reservations not sent yet; none reaches Redis. */
START_TEST(batch_detach_fails_unsent)
{
    struct env e;
    struct res xs[5];
    char nos[5][16];
    up(&e, "");
    struct sk_stock_item it = item(134, 10, 5);
    publish(&e, &it);
    for (int i = 0; i < 5; i++) {
        snprintf(nos[i], sizeof(nos[i]), "u134-%d", i);
        start_reserve(&e, 134, 1 + (uint64_t)i, nos[i], &xs[i]);
    }
    e.ops->detach(e.conn);
    all_closed(xs, 5);
    ck_assert_int_eq(stock_left(&e, 134), 10);
    ck_assert_int_eq(xlen(&e, 134), 0);
    env_end(&e);
}
END_TEST

START_TEST(bad_reserve_batch_refused)
{
    static const char *const cases[][2] = {
        {"{\"reserve_batch\":0}", "config key reserve_batch: 0 is out of range (1 to 256)"},
        {"{\"reserve_batch\":257}", "config key reserve_batch: 257 is out of range (1 to 256)"},
        {"{\"reserve_batch\":-3}", "config key reserve_batch: -3 is out of range (1 to 256)"},
        {"{\"reserve_batch\":\"64\"}", "config key reserve_batch: must be an integer from 1 to 256, not a string"},
        {"{\"reserve_batch\":1.5}", "config key reserve_batch: must be an integer from 1 to 256, not a number with a fraction"},
        {"{\"reserve_inflight\":0}", "config key reserve_inflight: 0 is out of range (1 to 64)"},
        {"{\"reserve_inflight\":65}", "config key reserve_inflight: 65 is out of range (1 to 64)"},
        {"{\"reserve_inflight\":\"2\"}", "config key reserve_inflight: must be an integer from 1 to 64, not a string"},
        {"{\"reserve_inflight\":null}", "config key reserve_inflight: must be an integer from 1 to 64, not null"},
    };
    struct env e;
    env_loop(&e);
    snprintf(e.cfg.plugin_dir, sizeof(e.cfg.plugin_dir), "%s", plugin_build_dir());
    e.pc.present = 1;
    snprintf(e.pc.name, sizeof(e.pc.name), "redis");
    snprintf(e.pc.where, sizeof(e.pc.where), "check_redis_stock");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sk_loaded_plugin p;
        char err[SK_ERRLEN] = "";
        e.pc.config_json = (char *)cases[i][0];
        ck_assert_int_eq(sk_plugin_load(&e.cfg, &e.pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "%s: %s", cases[i][0], err);
    }
    uv_close((uv_handle_t *)&e.guard, NULL);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
}
END_TEST

/* ---- cases: Redis away or misbehaving ----------------------------------- */

START_TEST(unreachable_fails_fast)
{
    struct env e;
    struct res x;
    char json[256];
    int port = sk_test_free_port();
    int64_t reconnects = counter("reconnects_total"), errors = counter("errors_total");

    snprintf(json, sizeof(json), "{\"host\":\"127.0.0.1\",\"port\":%d}", port);
    up_with(&e, json, 0);
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    uint64_t t0 = uv_hrtime();
    struct sk_stock_item it = item(116, 10, 1);
    RUN(&e, x, e.ops->publish(e.conn, &it, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strncmp(x.err, "redis not connected", 19) == 0, "%s", x.err);
    RUN(&e, x, e.ops->query(e.conn, 116, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis not connected") != NULL, "%s", x.err);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_msg(ms < 200, "failing took %llu ms", (unsigned long long)ms);
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    /* It keeps trying by itself, with back-off (100 ms, then 200 ms, ...). */
    run_for(&e, 450);
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    ck_assert_int_ge(counter("reconnects_total") - reconnects, 2);
    ck_assert_int_le(counter("reconnects_total") - reconnects, 4);
    ck_assert_int_ge(counter("errors_total") - errors, 2);
    RUN(&e, x, e.ops->query(e.conn, 116, on_res, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "Connection refused") != NULL, "%s", x.err);
    down(&e);
}
END_TEST

START_TEST(wrong_password_never_ready)
{
    struct env e;
    struct res x;
    char json[256];
    snprintf(json, sizeof(json), "{\"host\":\"%s\",\"port\":%d,\"password\":\"not-the-password\"}",
             sk_test_redis_host(), sk_test_redis_port());
    up_with(&e, json, 0);
    run_for(&e, 300);
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    RUN(&e, x, e.ops->query(e.conn, 117, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis not connected") && strstr(x.err, "refused AUTH"), "%s", x.err);
    down(&e);
}
END_TEST

START_TEST(reconnects_after_kill)
{
    struct env e;
    struct res x;
    up(&e, "");
    int64_t reconnects = counter("reconnects_total");
    struct sk_stock_item it = item(118, 10, 1);
    publish(&e, &it);

    /* Find the plugin's connection (named, in this suite's db) and kill it. */
    redisReply *r = cmd(&e, "CLIENT LIST");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    long long id = -1;
    char dbfield[16];
    snprintf(dbfield, sizeof(dbfield), " db=%d ", REDIS_DB);
    for (char *line = strtok(r->str, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(line, " name=seckill-stock-redis ") != NULL && strstr(line, dbfield) != NULL)
            id = atoll(line + 3); /* "id=N ..." */
    }
    freeReplyObject(r);
    ck_assert_msg(id > 0, "the plugin's connection is not in CLIENT LIST");
    r = cmd(&e, "CLIENT KILL ID %lld", id);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);

    ck_assert_msg(run_until_ready(&e, 0, 3000), "the plugin did not notice the connection dropped");
    RUN(&e, x, e.ops->query(e.conn, 118, on_res, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis not connected") && strstr(x.err, "lost"), "%s", x.err);
    ck_assert_msg(run_until_ready(&e, 1, 5000), "the plugin did not reconnect");
    ck_assert_int_eq(counter("reconnects_total") - reconnects, 1);
    x = query(&e, 118);
    OK(x);
    ck_assert_int_eq(x.r.remaining, 10);
    down(&e);
}
END_TEST

/* A fake Redis on the test's loop: answers the handshake, then either never
 * answers a script (SILENT) or has lost its scripts (NOSCRIPT: EVALSHA gets
 * NOSCRIPT, EVAL gets a query-shaped answer). */
enum fake_mode { FAKE_SILENT, FAKE_NOSCRIPT };

struct fake {
    uv_tcp_t server;
    enum fake_mode mode;
    int port;
    int accepted, evalsha, eval, open;
};

struct fake_client {
    uv_tcp_t h;
    struct fake *f;
    redisReader *rd;
    char buf[65536];
};

static void fake_reply(struct fake_client *fc, const char *text)
{
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    ck_assert_int_eq(uv_try_write((uv_stream_t *)&fc->h, &b, 1), (int)strlen(text));
}

static void fake_client_closed(uv_handle_t *h)
{
    struct fake_client *fc = h->data;
    fc->f->open--;
    redisReaderFree(fc->rd);
    free(fc);
}

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fake_client *fc = h->data;
    *buf = uv_buf_init(fc->buf, sizeof(fc->buf));
}

static void fake_command(struct fake_client *fc, const redisReply *c)
{
    ck_assert_int_eq(c->type, REDIS_REPLY_ARRAY);
    const char *name = c->element[0]->str;
    if (strcasecmp(name, "EVALSHA") == 0) {
        fc->f->evalsha++;
        if (fc->f->mode == FAKE_NOSCRIPT)
            fake_reply(fc, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    } else if (strcasecmp(name, "EVAL") == 0) {
        fc->f->eval++;
        if (fc->f->mode == FAKE_NOSCRIPT)
            fake_reply(fc, "*5\r\n:0\r\n:12\r\n:11\r\n:0\r\n:1\r\n");
    } else if (strcasecmp(name, "SCRIPT") == 0) {
        fake_reply(fc, "$40\r\n0123456789abcdef0123456789abcdef01234567\r\n");
    } else {
        fake_reply(fc, "+OK\r\n");
    }
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fake_client *fc = s->data;
    void *c = NULL;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, fake_client_closed);
        return;
    }
    ck_assert_int_eq(redisReaderFeed(fc->rd, buf->base, (size_t)n), REDIS_OK);
    for (;;) {
        ck_assert_int_eq(redisReaderGetReply(fc->rd, &c), REDIS_OK);
        if (c == NULL)
            break;
        fake_command(fc, c);
        freeReplyObject(c);
    }
}

static void fake_accept(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct fake_client *fc = calloc(1, sizeof(*fc));
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(fc);
    fc->f = f;
    fc->rd = redisReaderCreate();
    ck_assert_int_eq(uv_tcp_init(server->loop, &fc->h), 0);
    fc->h.data = fc;
    f->open++;
    ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&fc->h), 0);
    f->accepted++;
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&fc->h, fake_alloc, fake_read), 0);
}

static void fake_start(uv_loop_t *loop, struct fake *f, enum fake_mode mode)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    ck_assert_int_eq(uv_tcp_init(loop, &f->server), 0);
    f->server.data = f;
    ck_assert_int_eq(uv_tcp_bind(&f->server, (const struct sockaddr *)&addr, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&f->server, 16, fake_accept), 0);
    ck_assert_int_eq(uv_tcp_getsockname(&f->server, (struct sockaddr *)&bound, &len), 0);
    f->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void close_fake_client(uv_handle_t *h, void *arg)
{
    if (h->type == UV_TCP && h->data != NULL && h->data != arg && !uv_is_closing(h))
        uv_close(h, fake_client_closed);
}

static void fake_stop(uv_loop_t *loop, struct fake *f)
{
    uv_walk(loop, close_fake_client, f);
    uv_close((uv_handle_t *)&f->server, NULL);
}

/* A loop with a fake Redis of `mode` on it, and the plugin pointed at the fake. */
static void up_fake(struct env *e, struct fake *f, enum fake_mode mode, const char *extra)
{
    char json[256];
    env_loop(e);
    fake_start(&e->loop, f, mode);
    snprintf(json, sizeof(json), "{\"host\":\"127.0.0.1\",\"port\":%d,\"db\":5%s%s}", f->port, extra[0] ? "," : "",
             extra);
    env_plugin(e, json);
    ck_assert_msg(run_until_ready(e, 1, 3000), "no handshake with the fake server");
}

static void down_fake(struct env *e, struct fake *f)
{
    e->ops->detach(e->conn);
    fake_stop(&e->loop, f);
    env_end(e);
    ck_assert_int_eq(f->open, 0);
}

START_TEST(command_timeout_recycles)
{
    struct env e;
    struct fake f;
    struct res x;

    up_fake(&e, &f, FAKE_SILENT, "\"command_timeout_ms\":200");
    ck_assert_int_eq(f.accepted, 1);

    uint64_t t0 = uv_hrtime();
    RUN(&e, x, e.ops->query(e.conn, 119, on_res, &x));
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis command timed out after 200 ms") != NULL, "%s", x.err);
    ck_assert_msg(ms >= 150 && ms < 2000, "timed out after %llu ms", (unsigned long long)ms);
    ck_assert_int_eq(f.evalsha, 1);
    /* The connection was thrown away and a new one made. */
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    ck_assert_msg(run_until_ready(&e, 1, 3000), "no reconnect after the timeout");
    ck_assert_int_eq(f.accepted, 2);

    down_fake(&e, &f);
}
END_TEST

START_TEST(noscript_falls_back_to_eval)
{
    struct env e;
    struct fake f;
    struct res x;

    up_fake(&e, &f, FAKE_NOSCRIPT, "");
    x = query(&e, 120);
    OK(x);
    ck_assert_int_eq(x.r.initial, 12);
    ck_assert_int_eq(x.r.remaining, 11);
    ck_assert_int_eq(x.r.state, SK_STOCK_PAUSED);
    ck_assert_int_eq(f.evalsha, 1);
    ck_assert_int_eq(f.eval, 1);
    ck_assert_int_eq(f.accepted, 1); /* on the same connection */

    down_fake(&e, &f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_stock");
    TCase *verbs = tcase_create("verbs");
    tcase_set_timeout(verbs, 30);
    tcase_add_test(verbs, publish_then_query);
    tcase_add_test(verbs, publish_refuses_bad_items);
    tcase_add_test(verbs, publish_twice_never_resets_stock);
    tcase_add_test(verbs, reserve_until_sold_out);
    tcase_add_test(verbs, per_user_limit);
    tcase_add_test(verbs, reserve_retry_takes_one_unit);
    tcase_add_test(verbs, sale_window);
    tcase_add_test(verbs, paused_and_closed);
    tcase_add_test(verbs, not_on_sale);
    tcase_add_test(verbs, add_units_adds);
    tcase_add_test(verbs, release_exactly_once);
    tcase_add_test(verbs, get_order_and_seq);
    tcase_add_test(verbs, reservation_log);
    suite_add_tcase(s, verbs);
    TCase *load = tcase_create("concurrency");
    tcase_set_timeout(load, 90);
    tcase_add_test(load, many_in_flight_never_oversell);
    tcase_add_test(load, detach_fails_pending);
    tcase_add_test(load, detach_from_callback);
    suite_add_tcase(s, load);
    TCase *batch = tcase_create("batches");
    tcase_set_timeout(batch, 30);
    tcase_add_test(batch, batch_in_one_turn);
    tcase_add_test(batch, batch_cap_and_items);
    tcase_add_test(batch, batch_after_deadline_takes_nothing);
    tcase_add_test(batch, batch_waits_for_one_call_in_flight);
    tcase_add_test(batch, batch_waits_for_two_calls_in_flight);
    tcase_add_test(batch, batch_detach_with_call_in_flight);
    tcase_add_test(batch, batch_detach_from_callback);
    tcase_add_test(batch, batch_detach_fails_unsent);
    tcase_add_test(batch, bad_reserve_batch_refused);
    suite_add_tcase(s, batch);
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 30);
    tcase_add_test(faults, unreachable_fails_fast);
    tcase_add_test(faults, wrong_password_never_ready);
    tcase_add_test(faults, reconnects_after_kill);
    tcase_add_test(faults, command_timeout_recycles);
    tcase_add_test(faults, noscript_falls_back_to_eval);
    suite_add_tcase(s, faults);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
