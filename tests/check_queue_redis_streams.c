/*
 * The redis_streams queue plugin (plugins/queue/redis_streams/) and the
 * reservation-log reader under it (plugins/common/reslog.c), driven through the
 * plugin host on a libuv loop of the test's own, against the stack's real
 * redis-server (db 10 for this suite, key prefix "q").
 *
 * The producer is the real one: the redis stock plugin, loaded next to the queue
 * plugin, publishes items and reserves units, and its reserve script appends the
 * reservation-log entries. Entries that the stock plugin would never write
 * (malformed ones) are added with XADD on a synchronous hiredis connection, which
 * also checks what Redis holds (XLEN, XPENDING).
 */
#include <check.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
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

#define REDIS_DB 10
#define ACT      88   /* activity id of every item here */
#define PRICE    1250 /* price_cents of every item here */
#define NQ       2    /* queue consumers a case may run: "A" and "B" */
#define MAXREC   256

/* ---- the plugins on a loop ---------------------------------------------- */

struct loaded {
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    void *conn;
    int on;
};

struct env {
    struct sk_config cfg;
    uv_loop_t loop;
    uv_timer_t guard;
    int expired;
    redisContext *r;
    struct loaded stock;
    const struct sk_stock_ops *sops;
    struct loaded q[NQ];
    const struct sk_queue_ops *qops;
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

static void run_for(struct env *e, unsigned ms)
{
    int never = 0;
    run_until_flag(e, &never, ms);
}

static int run_until_ready(struct env *e, int (*ready)(void *), void *conn, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while (!ready(conn) && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return ready(conn) != 0;
}

static void env_loop(struct env *e)
{
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(uv_timer_init(&e->loop, &e->guard), 0);
    e->guard.data = &e->expired;
    snprintf(e->cfg.plugin_dir, sizeof(e->cfg.plugin_dir), "%s", plugin_build_dir());
}

/* Load (not attach) the plugin in file `so` (under the build dir; NULL: the
 * default name for kind and name) with `json`; SK_ERR with err. */
static int load_file(struct env *e, struct loaded *l, enum sk_plugin_kind kind, const char *name, const char *so,
                     const char *json, char *err)
{
    memset(l, 0, sizeof(*l));
    l->pc.present = 1;
    snprintf(l->pc.name, sizeof(l->pc.name), "%s", name);
    if (so != NULL)
        snprintf(l->pc.path, sizeof(l->pc.path), "%s/%s", plugin_build_dir(), so);
    l->pc.config_json = strdup(json);
    ck_assert_ptr_nonnull(l->pc.config_json);
    snprintf(l->pc.where, sizeof(l->pc.where), "check_queue_redis_streams");
    if (sk_plugin_load(&e->cfg, &l->pc, kind, &l->p, err) != SK_OK) {
        free(l->pc.config_json);
        l->pc.config_json = NULL;
        return SK_ERR;
    }
    l->on = 1;
    return SK_OK;
}

static int load(struct env *e, struct loaded *l, enum sk_plugin_kind kind, const char *name, const char *json,
                char *err)
{
    return load_file(e, l, kind, name, NULL, json, err);
}

static int stock_ready(void *conn);
static const struct sk_stock_ops *g_sops;

static int stock_ready(void *conn)
{
    return g_sops->ready(conn);
}

/* The real Redis (db 10, flushed) and the stock plugin on it, prefix "q". */
static void up(struct env *e)
{
    char json[256], err[SK_ERRLEN] = "";
    env_loop(e);
    e->r = sk_test_redis(REDIS_DB);
    snprintf(json, sizeof(json), "{\"host\":\"%s\",\"port\":%d,\"db\":%d,\"key_prefix\":\"q\"}", sk_test_redis_host(),
             sk_test_redis_port(), REDIS_DB);
    ck_assert_msg(load(e, &e->stock, SK_PLUGIN_STOCK, "redis", json, err) == SK_OK, "%s", err);
    e->sops = g_sops = sk_plugin_stock_ops(&e->stock.p);
    ck_assert_msg(e->sops->attach(e->stock.p.instance, &e->loop, &e->stock.conn, err) == SK_OK, "%s", err);
    ck_assert_msg(run_until_ready(e, stock_ready, e->stock.conn, 5000), "the stock plugin did not connect");
}

static const struct sk_queue_ops *g_qops;

static int queue_ready(void *conn)
{
    return g_qops->ready(conn);
}

/* Queue consumer number i ("A", "B"), on the stack's Redis with `extra` keys. */
static void queue_up(struct env *e, int i, const char *extra)
{
    char json[512], err[SK_ERRLEN] = "";
    snprintf(json, sizeof(json),
             "{\"host\":\"%s\",\"port\":%d,\"db\":%d,\"key_prefix\":\"q\",\"consumer\":\"%c\","
             "\"claim_idle_ms\":200%s%s}",
             sk_test_redis_host(), sk_test_redis_port(), REDIS_DB, 'A' + i, extra[0] ? "," : "", extra);
    ck_assert_msg(load(e, &e->q[i], SK_PLUGIN_QUEUE, "redis_streams", json, err) == SK_OK, "%s", err);
    e->qops = g_qops = sk_plugin_queue_ops(&e->q[i].p);
    ck_assert_msg(e->qops->attach(e->q[i].p.instance, &e->loop, &e->q[i].conn, err) == SK_OK, "%s", err);
    ck_assert_msg(run_until_ready(e, queue_ready, e->q[i].conn, 5000), "the queue plugin did not connect");
}

static void unload(struct loaded *l)
{
    if (!l->on)
        return;
    sk_plugin_unload(&l->p);
    free(l->pc.config_json);
    l->on = 0;
}

/* Detach what is attached, let every handle close (the loop must end by itself),
 * unload. */
static void down(struct env *e)
{
    for (int i = 0; i < NQ; i++) {
        if (e->q[i].conn != NULL)
            e->qops->detach(e->q[i].conn);
        e->q[i].conn = NULL;
    }
    if (e->stock.conn != NULL)
        e->sops->detach(e->stock.conn);
    uv_close((uv_handle_t *)&e->guard, NULL);
    ck_assert_int_eq(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    ck_assert_msg(uv_loop_close(&e->loop) == 0, "detach left handles open on the loop");
    for (int i = 0; i < NQ; i++)
        unload(&e->q[i]);
    unload(&e->stock);
    if (e->r != NULL)
        redisFree(e->r);
}

static int64_t counter(const char *name)
{
    char full[128];
    snprintf(full, sizeof(full), "seckill_plugin_redis_streams_%s", name);
    return sk_metric_value(sk_metric_counter(full, "", ""));
}

/* ---- the producer: the stock plugin ------------------------------------- */

struct sres {
    int done, status;
    struct sk_stock_reply r;
    struct sk_stock_order order;
    char err[SK_ERRLEN];
};

static void on_stock(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct sres *x = arg;
    x->done = 1;
    x->status = status;
    if (status == SK_OK) {
        x->r = *reply;
        if (reply->order != NULL)
            x->order = *reply->order;
        x->r.order = NULL;
    } else {
        snprintf(x->err, sizeof(x->err), "%s", err);
    }
}

static void publish_item(struct env *e, uint64_t id, int64_t stock, uint32_t limit)
{
    struct sres x = {0};
    int64_t now = sk_now_ms();
    struct sk_stock_item it = {.activity_id = ACT,
                               .item_id = id,
                               .stock = stock,
                               .per_user_limit = limit,
                               .price_cents = PRICE,
                               .starts_at_ms = now - 60000,
                               .ends_at_ms = now + 3600000};
    ck_assert_int_eq(e->sops->publish(e->stock.conn, &it, on_stock, &x), SK_OK);
    ck_assert_msg(run_until_flag(e, &x.done, 5000), "publish did not answer");
    ck_assert_msg(x.status == SK_OK, "publish: %s", x.err);
}

/* Reserve one unit of `item` for `user` at `now` as order "o<item>-<user>-<n>". */
static struct sres reserve_at(struct env *e, uint64_t item, uint64_t user, int n, int64_t now)
{
    char order_no[64];
    struct sres x = {0};
    snprintf(order_no, sizeof(order_no), "o%" PRIu64 "-%" PRIu64 "-%d", item, user, n);
    struct sk_reserve_req req = {.activity_id = ACT,
                                 .item_id = item,
                                 .user_id = user,
                                 .order_no = order_no,
                                 .now_ms = now,
                                 .expires_at_ms = now + 900000};
    ck_assert_int_eq(e->sops->reserve(e->stock.conn, &req, on_stock, &x), SK_OK);
    ck_assert_msg(run_until_flag(e, &x.done, 5000), "reserve did not answer");
    ck_assert_msg(x.status == SK_OK, "reserve: %s", x.err);
    ck_assert_int_eq(x.r.outcome, SK_RESERVED);
    return x;
}

static struct sres reserve(struct env *e, uint64_t item, uint64_t user, int n)
{
    return reserve_at(e, item, user, n, sk_now_ms());
}

/* ---- the queue verbs ---------------------------------------------------- */

struct rec {
    struct sk_reservation r;
    char order_no[128];
};

struct badrec {
    char raw[1200], why[256], source[256];
};

/* A copy of one consume() answer (the batch is valid only in the callback). */
struct batch {
    int done, calls, status;
    char err[SK_ERRLEN];
    size_t n, n_bad;
    struct rec recs[MAXREC];
    struct badrec bad[16];
    void *token;
    struct env *e;
    int detach_in_cb; /* detach consumer detach_idx from inside the callback */
    int detach_idx;
};

static void on_batch(void *arg, int status, const struct sk_queue_batch *b, const char *err)
{
    struct batch *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    if (status != SK_OK) {
        ck_assert_ptr_null(b);
        ck_assert_ptr_nonnull(err);
        snprintf(x->err, sizeof(x->err), "%s", err);
        return;
    }
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(err);
    ck_assert_uint_le(b->n, MAXREC);
    ck_assert_uint_le(b->n_bad, 16);
    x->n = b->n;
    x->n_bad = b->n_bad;
    x->token = b->ack_token;
    ck_assert_msg((b->n + b->n_bad == 0) == (b->ack_token == NULL), "a token exactly when the batch is not empty");
    for (size_t i = 0; i < b->n; i++) {
        x->recs[i].r = b->records[i];
        snprintf(x->recs[i].order_no, sizeof(x->recs[i].order_no), "%s", b->records[i].order_no);
        x->recs[i].r.order_no = x->recs[i].order_no;
    }
    for (size_t i = 0; i < b->n_bad; i++) {
        snprintf(x->bad[i].raw, sizeof(x->bad[i].raw), "%s", b->bad[i].raw);
        snprintf(x->bad[i].why, sizeof(x->bad[i].why), "%s", b->bad[i].why);
        snprintf(x->bad[i].source, sizeof(x->bad[i].source), "%s", b->bad[i].source);
    }
    if (x->detach_in_cb) {
        x->e->qops->detach(x->e->q[x->detach_idx].conn);
        x->e->q[x->detach_idx].conn = NULL;
    }
}

/* consume() on consumer i; the callback must not run inside the call. */
static struct batch *consume(struct env *e, int i, const uint64_t *items, size_t n, size_t max, unsigned wait_ms)
{
    struct batch *x = calloc(1, sizeof(*x));
    ck_assert_ptr_nonnull(x);
    x->e = e;
    ck_assert_int_eq(e->qops->consume(e->q[i].conn, items, n, max, wait_ms, on_batch, x), SK_OK);
    ck_assert_msg(x->calls == 0, "the callback ran inside consume()");
    ck_assert_msg(run_until_flag(e, &x->done, wait_ms + 5000), "consume did not answer");
    ck_assert_int_eq(x->calls, 1);
    return x;
}

struct done {
    int done, calls, status;
    int64_t lag;
    char err[SK_ERRLEN];
};

static void on_done(void *arg, int status, const char *err)
{
    struct done *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    if (status != SK_OK)
        snprintf(x->err, sizeof(x->err), "%s", err);
    else
        ck_assert_ptr_null(err);
}

static void on_lag(void *arg, int status, int64_t lag, const char *err)
{
    struct done *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    x->lag = lag;
    if (status != SK_OK)
        snprintf(x->err, sizeof(x->err), "%s", err);
}

#define RUN_DONE(e, x, call)                                                                                           \
    do {                                                                                                               \
        memset(&(x), 0, sizeof(x));                                                                                    \
        ck_assert_int_eq((call), SK_OK);                                                                               \
        ck_assert_msg((x).calls == 0, "the callback ran inside the verb call");                                        \
        ck_assert_msg(run_until_flag((e), &(x).done, 5000), "no callback within 5 s");                                 \
        ck_assert_int_eq((x).calls, 1);                                                                                \
    } while (0)

static void ack(struct env *e, int i, void *token)
{
    struct done x;
    RUN_DONE(e, x, e->qops->ack(e->q[i].conn, token, on_done, &x));
    ck_assert_msg(x.status == SK_OK, "ack: %s", x.err);
}

static int64_t lag(struct env *e, int i, const uint64_t *items, size_t n)
{
    struct done x;
    RUN_DONE(e, x, e->qops->lag(e->q[i].conn, items, n, on_lag, &x));
    ck_assert_msg(x.status == SK_OK, "lag: %s", x.err);
    return x.lag;
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

static long long xlen(struct env *e, uint64_t item)
{
    redisReply *r = cmd(e, "XLEN q:{item:%" PRIu64 "}:log", item);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Entries of the item's log pending in the group (delivered, not acknowledged). */
static long long pending(struct env *e, uint64_t item)
{
    redisReply *r = cmd(e, "XPENDING q:{item:%" PRIu64 "}:log seckill-orders", item);
    long long v = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer;
    freeReplyObject(r);
    return v;
}

static const struct rec *find_rec(const struct batch *b, const char *order_no)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->recs[i].order_no, order_no) == 0)
            return &b->recs[i];
    }
    return NULL;
}

/* ---- cases: delivery ---------------------------------------------------- */

START_TEST(consume_delivers_every_field)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    publish_item(&e, 201, 10, 2);
    int64_t now = sk_now_ms();
    /* Users 1..4 one unit each, user 1 a second one (seq 2). */
    for (uint64_t u = 1; u <= 4; u++)
        reserve_at(&e, 201, u, 1, now + (int64_t)u);
    reserve_at(&e, 201, 1, 2, now + 10);
    int64_t delivered = counter("delivered_total"), acked = counter("acked_total");

    uint64_t items[] = {201};
    struct batch *b = consume(&e, 0, items, 1, 100, 1000);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 5);
    ck_assert_uint_eq(b->n_bad, 0);
    ck_assert_ptr_nonnull(b->token);
    /* In the order of the log. */
    const char *order[] = {"o201-1-1", "o201-2-1", "o201-3-1", "o201-4-1", "o201-1-2"};
    for (size_t i = 0; i < 5; i++) {
        const struct sk_reservation *r = &b->recs[i].r;
        ck_assert_str_eq(r->order_no, order[i]);
        ck_assert_uint_eq(r->user_id, i < 4 ? i + 1 : 1);
        ck_assert_uint_eq(r->activity_id, ACT);
        ck_assert_uint_eq(r->item_id, 201);
        ck_assert_uint_eq(r->seq, i < 4 ? 1 : 2);
        ck_assert_int_eq(r->price_cents, PRICE);
        ck_assert_int_eq(r->reserved_at_ms, i < 4 ? now + (int64_t)i + 1 : now + 10);
        ck_assert_int_eq(r->expires_at_ms, r->reserved_at_ms + 900000);
    }
    ck_assert_int_eq(counter("delivered_total") - delivered, 5);
    ck_assert_int_eq(pending(&e, 201), 5);
    ck_assert_int_eq(lag(&e, 0, items, 1), 5);

    /* Acknowledged: gone from the group and from the log. */
    ack(&e, 0, b->token);
    ck_assert_int_eq(xlen(&e, 201), 0);
    ck_assert_int_eq(pending(&e, 201), 0);
    ck_assert_int_eq(lag(&e, 0, items, 1), 0);
    ck_assert_int_eq(counter("acked_total") - acked, 5);
    free(b);

    /* Nothing more: an empty batch, no token, after the wait. */
    uint64_t t0 = uv_hrtime();
    b = consume(&e, 0, items, 1, 100, 150);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n + b->n_bad, 0);
    ck_assert_ptr_null(b->token);
    ck_assert_uint_ge((uv_hrtime() - t0) / 1000000, 100);
    free(b);
    /* Asking for nothing, or following no item: an empty batch at once. */
    reserve_at(&e, 201, 9, 1, now + 20);
    t0 = uv_hrtime();
    b = consume(&e, 0, items, 1, 0, 2000);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n + b->n_bad, 0);
    free(b);
    b = consume(&e, 0, items, 0, 100, 2000);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n + b->n_bad, 0);
    free(b);
    ck_assert_uint_lt((uv_hrtime() - t0) / 1000000, 500);
    ck_assert_int_eq(xlen(&e, 201), 1);
    ck_assert_int_eq(pending(&e, 201), 0);
    down(&e);
}
END_TEST

START_TEST(second_consumer_never_gets_acked)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    queue_up(&e, 1, "");
    publish_item(&e, 202, 10, 1);
    for (uint64_t u = 1; u <= 3; u++)
        reserve(&e, 202, u, 1);
    uint64_t items[] = {202};

    struct batch *a = consume(&e, 0, items, 1, 100, 500);
    ck_assert_uint_eq(a->n, 3);
    ack(&e, 0, a->token);
    free(a);
    struct batch *b = consume(&e, 1, items, 1, 100, 100);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 0);
    free(b);

    /* New reservations go to whoever reads first, once. */
    reserve(&e, 202, 4, 1);
    reserve(&e, 202, 5, 1);
    b = consume(&e, 1, items, 1, 100, 500);
    ck_assert_uint_eq(b->n, 2);
    ck_assert_str_eq(b->recs[0].order_no, "o202-4-1");
    ck_assert_str_eq(b->recs[1].order_no, "o202-5-1");
    a = consume(&e, 0, items, 1, 100, 100);
    ck_assert_uint_eq(a->n, 0);
    free(a);
    ack(&e, 1, b->token);
    free(b);
    ck_assert_int_eq(xlen(&e, 202), 0);
    ck_assert_int_eq(pending(&e, 202), 0);
    down(&e);
}
END_TEST

/* Consumer A takes entries and dies without acknowledging them: after
 * claim_idle_ms, consumer B gets them (XAUTOCLAIM). */
START_TEST(dead_consumer_entries_claimed)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    queue_up(&e, 1, "");
    publish_item(&e, 203, 10, 1);
    for (uint64_t u = 1; u <= 3; u++)
        reserve(&e, 203, u, 1);
    uint64_t items[] = {203};
    int64_t claimed = counter("claimed_total");

    struct batch *a = consume(&e, 0, items, 1, 100, 500);
    ck_assert_uint_eq(a->n, 3);
    free(a);
    e.qops->detach(e.q[0].conn); /* dies: its token goes with it */
    e.q[0].conn = NULL;

    /* Not idle long enough yet. */
    struct batch *b = consume(&e, 1, items, 1, 100, 0);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 0);
    free(b);
    ck_assert_int_eq(pending(&e, 203), 3);

    run_for(&e, 300);
    b = consume(&e, 1, items, 1, 100, 0);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 3);
    for (uint64_t u = 1; u <= 3; u++) {
        char o[32];
        snprintf(o, sizeof(o), "o203-%" PRIu64 "-1", u);
        const struct rec *r = find_rec(b, o);
        ck_assert_msg(r != NULL, "%s was not claimed", o);
        ck_assert_uint_eq(r->r.user_id, u);
        ck_assert_uint_eq(r->r.seq, 1);
    }
    ck_assert_int_eq(counter("claimed_total") - claimed, 3);
    ack(&e, 1, b->token);
    free(b);
    ck_assert_int_eq(xlen(&e, 203), 0);
    ck_assert_int_eq(pending(&e, 203), 0);
    down(&e);
}
END_TEST

START_TEST(nack_redelivers_after_claim_idle)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    publish_item(&e, 204, 10, 1);
    reserve(&e, 204, 1, 1);
    reserve(&e, 204, 2, 1);
    uint64_t items[] = {204};

    struct batch *a = consume(&e, 0, items, 1, 100, 500);
    ck_assert_uint_eq(a->n, 2);
    e.qops->nack(e.q[0].conn, a->token); /* MariaDB is down */
    free(a);
    a = consume(&e, 0, items, 1, 100, 50);
    ck_assert_uint_eq(a->n, 0);
    free(a);
    ck_assert_int_eq(pending(&e, 204), 2);
    ck_assert_int_eq(xlen(&e, 204), 2);

    run_for(&e, 300);
    a = consume(&e, 0, items, 1, 100, 0);
    ck_assert_msg(a->status == SK_OK, "%s", a->err);
    ck_assert_uint_eq(a->n, 2);
    ck_assert_ptr_nonnull(find_rec(a, "o204-1-1"));
    ck_assert_ptr_nonnull(find_rec(a, "o204-2-1"));
    ack(&e, 0, a->token);
    free(a);
    ck_assert_int_eq(xlen(&e, 204), 0);
    /* nack of nothing is harmless */
    e.qops->nack(e.q[0].conn, NULL);
    down(&e);
}
END_TEST

START_TEST(lag_counts_unacked_across_items)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    uint64_t items[] = {211, 212, 213, 299}; /* 299 never published */
    for (uint64_t i = 0; i < 3; i++) {
        publish_item(&e, items[i], 10, 1);
        for (uint64_t u = 1; u <= 2 + i; u++)
            reserve(&e, items[i], u, 1);
    }
    /* Before anyone read: the whole logs. */
    ck_assert_int_eq(lag(&e, 0, items, 4), 9);
    ck_assert_int_eq(lag(&e, 0, items + 1, 1), 3);
    ck_assert_int_eq(lag(&e, 0, items, 0), 0);
    ck_assert_int_eq(lag(&e, 0, items + 3, 1), 0);

    /* Delivered but not acknowledged still counts. */
    struct batch *b = consume(&e, 0, items, 4, 4, 500);
    ck_assert_uint_eq(b->n, 4);
    ck_assert_int_eq(lag(&e, 0, items, 4), 9);
    ack(&e, 0, b->token);
    ck_assert_int_eq(lag(&e, 0, items, 4), 5);
    free(b);
    /* The rest (read with the first batch, held back by max). */
    b = consume(&e, 0, items, 4, 100, 500);
    ck_assert_uint_eq(b->n, 5);
    ck_assert_int_eq(lag(&e, 0, items, 4), 5);
    ack(&e, 0, b->token);
    free(b);
    ck_assert_int_eq(lag(&e, 0, items, 4), 0);
    /* New ones after the group read everything. */
    reserve(&e, 212, 9, 1);
    reserve(&e, 213, 9, 1);
    ck_assert_int_eq(lag(&e, 0, items, 4), 2);
    down(&e);
}
END_TEST

/* Entries that are not reservations: delivered as bad records (raw text, why,
 * where) beside the good ones, and acknowledged with the batch. */
START_TEST(malformed_entries_are_bad_records)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    const char *key = "q:{item:221}:log";
    char ids[5][64];
    const char *adds[5] = {
        "XADD %s * order_no g1 user_id 5 activity_id 88 item_id 221 seq 1 price_cents 100 reserved_at_ms 1 "
        "expires_at_ms 2",
        "XADD %s * order_no b1 user_id 5 activity_id 88 item_id 221 price_cents 100 reserved_at_ms 1 "
        "expires_at_ms 2",
        "XADD %s * order_no b2 user_id abc activity_id 88 item_id 221 seq 1 price_cents 100 reserved_at_ms 1 "
        "expires_at_ms 2",
        "XADD %s * order_no b3 user_id 5 activity_id 88 item_id 999 seq 1 price_cents 100 reserved_at_ms 1 "
        "expires_at_ms 2",
        NULL,
    };
    for (int i = 0; i < 4; i++) {
        redisReply *r = cmd(&e, adds[i], key);
        ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
        snprintf(ids[i], sizeof(ids[i]), "%s", r->str);
        freeReplyObject(r);
    }
    /* A value with a line break: escaped in the raw text. */
    redisReply *r = cmd(&e, "XADD %s * order_no b4 user_id %s", key, "1\n2");
    snprintf(ids[4], sizeof(ids[4]), "%s", r->str);
    freeReplyObject(r);
    int64_t bad = counter("bad_records_total");

    uint64_t items[] = {221};
    struct batch *b = consume(&e, 0, items, 1, 100, 500);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 1);
    ck_assert_str_eq(b->recs[0].order_no, "g1");
    ck_assert_uint_eq(b->recs[0].r.user_id, 5);
    ck_assert_uint_eq(b->recs[0].r.seq, 1);
    ck_assert_uint_eq(b->n_bad, 4);
    ck_assert_str_eq(b->bad[0].why, "field seq is missing");
    ck_assert_str_eq(b->bad[0].raw, "order_no=b1 user_id=5 activity_id=88 item_id=221 price_cents=100 reserved_at_ms=1 "
                                    "expires_at_ms=2");
    char src[128];
    snprintf(src, sizeof(src), "%s %s", key, ids[1]);
    ck_assert_str_eq(b->bad[0].source, src);
    ck_assert_msg(strstr(b->bad[1].why, "field user_id is not a number") != NULL, "%s", b->bad[1].why);
    ck_assert_msg(strstr(b->bad[1].raw, "user_id=abc") != NULL, "%s", b->bad[1].raw);
    ck_assert_str_eq(b->bad[2].why, "field item_id is 999 in the log of item 221");
    ck_assert_str_eq(b->bad[3].raw, "order_no=b4 user_id=1\\x0a2");
    ck_assert_str_eq(b->bad[3].why, "field activity_id is missing");
    snprintf(src, sizeof(src), "%s %s", key, ids[4]);
    ck_assert_str_eq(b->bad[3].source, src);
    ck_assert_int_eq(counter("bad_records_total") - bad, 4);

    ack(&e, 0, b->token);
    free(b);
    ck_assert_int_eq(xlen(&e, 221), 0);
    ck_assert_int_eq(pending(&e, 221), 0);
    /* A batch of bad records only is acknowledged the same way. */
    r = cmd(&e, "XADD %s * nonsense 1", key);
    freeReplyObject(r);
    b = consume(&e, 0, items, 1, 100, 500);
    ck_assert_uint_eq(b->n, 0);
    ck_assert_uint_eq(b->n_bad, 1);
    ck_assert_ptr_nonnull(b->token);
    ack(&e, 0, b->token);
    free(b);
    ck_assert_int_eq(xlen(&e, 221), 0);
    down(&e);
}
END_TEST

#define MANY 50

START_TEST(many_items_at_once)
{
    struct env e;
    static char seen[MANY][2];
    uint64_t items[MANY];
    up(&e);
    queue_up(&e, 0, "");
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < MANY; i++) {
        items[i] = 301 + (uint64_t)i;
        publish_item(&e, items[i], 5, 2);
        reserve(&e, items[i], 7, 1);
        reserve(&e, items[i], 7, 2);
    }
    ck_assert_int_eq(lag(&e, 0, items, MANY), 2 * MANY);
    int got = 0, batches = 0;
    while (got < 2 * MANY && batches < 20) {
        struct batch *b = consume(&e, 0, items, MANY, 30, 200);
        ck_assert_msg(b->status == SK_OK, "%s", b->err);
        ck_assert_uint_le(b->n, 30);
        ck_assert_uint_eq(b->n_bad, 0);
        for (size_t k = 0; k < b->n; k++) {
            const struct sk_reservation *r = &b->recs[k].r;
            ck_assert(r->item_id >= 301 && r->item_id < 301 + MANY);
            ck_assert(r->seq == 1 || r->seq == 2);
            char want[32];
            snprintf(want, sizeof(want), "o%" PRIu64 "-7-%u", r->item_id, r->seq);
            ck_assert_str_eq(r->order_no, want);
            ck_assert_msg(seen[r->item_id - 301][r->seq - 1]++ == 0, "%s delivered twice", r->order_no);
        }
        got += (int)b->n;
        if (b->token != NULL)
            ack(&e, 0, b->token);
        free(b);
        batches++;
    }
    ck_assert_int_eq(got, 2 * MANY);
    ck_assert_int_le(batches, 5); /* 100 in batches of 30: 4, not one per item */
    ck_assert_int_eq(lag(&e, 0, items, MANY), 0);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(xlen(&e, items[i]), 0);
    down(&e);
}
END_TEST

/* ---- cases: blocking, publish ------------------------------------------- */

struct later {
    struct env *e;
    uv_timer_t t;
};

static void add_later(uv_timer_t *t)
{
    struct later *l = t->data;
    redisReply *r = cmd(l->e, "XADD q:{item:231}:log * order_no late user_id 3 activity_id 88 item_id 231 seq 1 "
                              "price_cents 5 reserved_at_ms 10 expires_at_ms 20");
    freeReplyObject(r);
}

START_TEST(blocking_read_waits_for_new_entries)
{
    struct env e;
    struct later l;
    up(&e);
    /* A command timeout far below the wait: the blocking read must not trip it. */
    queue_up(&e, 0, "\"command_timeout_ms\":200");
    uint64_t items[] = {231};
    l.e = &e;
    ck_assert_int_eq(uv_timer_init(&e.loop, &l.t), 0);
    l.t.data = &l;
    /* Make the group first, so that the entry added later is news to it. */
    struct batch *b = consume(&e, 0, items, 1, 10, 0);
    ck_assert_uint_eq(b->n, 0);
    free(b);

    uv_timer_start(&l.t, add_later, 300, 0);
    uint64_t t0 = uv_hrtime();
    b = consume(&e, 0, items, 1, 10, 1500);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 1);
    ck_assert_str_eq(b->recs[0].order_no, "late");
    ck_assert_msg(ms >= 250 && ms < 1400, "answered after %llu ms", (unsigned long long)ms);
    ack(&e, 0, b->token);
    free(b);

    /* Nothing comes: an empty batch after the wait, not a timeout. */
    t0 = uv_hrtime();
    b = consume(&e, 0, items, 1, 10, 700);
    ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 0);
    ck_assert_msg(ms >= 650, "answered after %llu ms", (unsigned long long)ms);
    ck_assert_int_eq(e.qops->ready(e.q[0].conn), 1);
    free(b);
    /* A verb sent behind a blocking read waits for it and does not time out. */
    struct batch *bl = calloc(1, sizeof(*bl));
    struct done x = {0};
    ck_assert_int_eq(e.qops->consume(e.q[0].conn, items, 1, 10, 500, on_batch, bl), SK_OK);
    ck_assert_int_eq(e.qops->lag(e.q[0].conn, items, 1, on_lag, &x), SK_OK);
    ck_assert(run_until_flag(&e, &x.done, 3000));
    ck_assert_msg(x.status == SK_OK, "lag behind a blocking read: %s", x.err);
    ck_assert(run_until_flag(&e, &bl->done, 3000));
    ck_assert_int_eq(bl->status, SK_OK);
    free(bl);
    uv_close((uv_handle_t *)&l.t, NULL);
    down(&e);
}
END_TEST

START_TEST(publish_appends_readable_records)
{
    struct env e;
    struct done x;
    up(&e);
    queue_up(&e, 0, "");
    int64_t published = counter("published_total");
    struct sk_reservation recs[3] = {
        {.order_no = "p1",
         .user_id = 11,
         .activity_id = ACT,
         .item_id = 241,
         .seq = 1,
         .price_cents = 700,
         .reserved_at_ms = 1700000000001,
         .expires_at_ms = 1700000900001},
        {.order_no = "p2",
         .user_id = 12,
         .activity_id = ACT,
         .item_id = 242,
         .seq = 3,
         .price_cents = 0,
         .reserved_at_ms = 1700000000002,
         .expires_at_ms = 1700000900002},
        {.order_no = "p3",
         .user_id = 13,
         .activity_id = ACT,
         .item_id = 241,
         .seq = 2,
         .price_cents = 701,
         .reserved_at_ms = 1700000000003,
         .expires_at_ms = 1700000900003},
    };
    RUN_DONE(&e, x, e.qops->publish(e.q[0].conn, recs, 3, on_done, &x));
    ck_assert_msg(x.status == SK_OK, "%s", x.err);
    ck_assert_int_eq(counter("published_total") - published, 3);
    ck_assert_int_eq(xlen(&e, 241), 2);
    ck_assert_int_eq(xlen(&e, 242), 1);
    /* The stock plugin's fields, in its order. */
    redisReply *r = cmd(&e, "XRANGE q:{item:241}:log - + COUNT 1");
    ck_assert_int_eq(r->elements, 1);
    redisReply *f = r->element[0]->element[1];
    const char *want[] = {"order_no",
                          "p1",
                          "user_id",
                          "11",
                          "activity_id",
                          "88",
                          "item_id",
                          "241",
                          "seq",
                          "1",
                          "price_cents",
                          "700",
                          "reserved_at_ms",
                          "1700000000001",
                          "expires_at_ms",
                          "1700000900001"};
    ck_assert_int_eq(f->elements, 16);
    for (size_t i = 0; i < 16; i++)
        ck_assert_str_eq(f->element[i]->str, want[i]);
    freeReplyObject(r);

    uint64_t items[] = {241, 242};
    struct batch *b = consume(&e, 0, items, 2, 100, 500);
    ck_assert_uint_eq(b->n, 3);
    for (int i = 0; i < 3; i++) {
        const struct rec *got = find_rec(b, recs[i].order_no);
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got->r.user_id, recs[i].user_id);
        ck_assert_uint_eq(got->r.activity_id, recs[i].activity_id);
        ck_assert_uint_eq(got->r.item_id, recs[i].item_id);
        ck_assert_uint_eq(got->r.seq, recs[i].seq);
        ck_assert_int_eq(got->r.price_cents, recs[i].price_cents);
        ck_assert_int_eq(got->r.reserved_at_ms, recs[i].reserved_at_ms);
        ck_assert_int_eq(got->r.expires_at_ms, recs[i].expires_at_ms);
    }
    ack(&e, 0, b->token);
    free(b);

    /* A bad record refuses the whole call; nothing is appended. */
    recs[1].order_no = "";
    RUN_DONE(&e, x, e.qops->publish(e.q[0].conn, recs, 3, on_done, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_str_eq(x.err, "record 1: the order number must be 1 to 127 bytes");
    recs[1].order_no = "p2";
    recs[2].seq = 0;
    RUN_DONE(&e, x, e.qops->publish(e.q[0].conn, recs, 3, on_done, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "record 2 (order p3): seq must be at least 1") != NULL, "%s", x.err);
    ck_assert_int_eq(xlen(&e, 241), 0);
    ck_assert_int_eq(xlen(&e, 242), 0);
    /* Nothing to publish is fine. */
    RUN_DONE(&e, x, e.qops->publish(e.q[0].conn, recs, 0, on_done, &x));
    ck_assert_int_eq(x.status, SK_OK);
    down(&e);
}
END_TEST

/* The group is made again when a log lost it (the key was deleted). */
START_TEST(group_made_again_after_log_deleted)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    publish_item(&e, 251, 10, 1);
    reserve(&e, 251, 1, 1);
    uint64_t items[] = {251};
    struct batch *b = consume(&e, 0, items, 1, 10, 500);
    ck_assert_uint_eq(b->n, 1);
    ack(&e, 0, b->token);
    free(b);
    redisReply *r = cmd(&e, "DEL q:{item:251}:log");
    freeReplyObject(r);
    reserve(&e, 251, 2, 1); /* a new log, without the group */
    b = consume(&e, 0, items, 1, 10, 500);
    ck_assert_msg(b->status == SK_OK, "%s", b->err);
    ck_assert_uint_eq(b->n, 1);
    ck_assert_str_eq(b->recs[0].order_no, "o251-2-1");
    ack(&e, 0, b->token);
    free(b);
    ck_assert_int_eq(xlen(&e, 251), 0);
    down(&e);
}
END_TEST

/* ---- cases: detach, Redis away ------------------------------------------ */

START_TEST(detach_with_read_in_flight)
{
    struct env e;
    up(&e);
    queue_up(&e, 0, "");
    publish_item(&e, 261, 10, 1);
    reserve(&e, 261, 1, 1);
    reserve(&e, 261, 2, 1);
    uint64_t items[] = {261};
    /* A batch never acknowledged: its token goes with the connection. */
    struct batch *held = consume(&e, 0, items, 1, 1, 500);
    ck_assert_uint_eq(held->n, 1);
    free(held);
    /* A blocking read in flight, then detach: it fails once, at once. */
    struct batch *b = calloc(1, sizeof(*b));
    struct batch *c = calloc(1, sizeof(*c));
    ck_assert_int_eq(e.qops->consume(e.q[0].conn, items, 1, 10, 0, on_batch, c), SK_OK);
    ck_assert(run_until_flag(&e, &c->done, 3000));
    ck_assert_uint_eq(c->n, 1);
    ck_assert_int_eq(e.qops->consume(e.q[0].conn, items, 1, 10, 3000, on_batch, b), SK_OK);
    run_for(&e, 100);
    ck_assert_int_eq(b->calls, 0);
    e.qops->detach(e.q[0].conn);
    e.q[0].conn = NULL;
    ck_assert_int_eq(b->calls, 1);
    ck_assert_int_eq(b->status, SK_ERR);
    ck_assert_str_eq(b->err, "redis connection closed");
    free(b);
    free(c);

    /* Detach from inside a consume callback (a loop stopping). */
    queue_up(&e, 1, "");
    reserve(&e, 261, 3, 1);
    b = calloc(1, sizeof(*b));
    b->e = &e;
    b->detach_in_cb = 1;
    b->detach_idx = 1;
    ck_assert_int_eq(e.qops->consume(e.q[1].conn, items, 1, 10, 500, on_batch, b), SK_OK);
    ck_assert(run_until_flag(&e, &b->done, 3000));
    ck_assert_int_eq(b->status, SK_OK);
    ck_assert_uint_eq(b->n, 1);
    ck_assert_ptr_null(e.q[1].conn);
    free(b);
    down(&e);
}
END_TEST

START_TEST(unreachable_fails_fast)
{
    struct env e;
    struct done x;
    char json[256], err[SK_ERRLEN] = "";
    env_loop(&e);
    snprintf(json, sizeof(json), "{\"host\":\"127.0.0.1\",\"port\":%d,\"claim_idle_ms\":200}", sk_test_free_port());
    ck_assert_msg(load(&e, &e.q[0], SK_PLUGIN_QUEUE, "redis_streams", json, err) == SK_OK, "%s", err);
    e.qops = sk_plugin_queue_ops(&e.q[0].p);
    ck_assert_int_eq(e.qops->attach(e.q[0].p.instance, &e.loop, &e.q[0].conn, err), SK_OK);
    ck_assert_int_eq(e.qops->ready(e.q[0].conn), 0);
    uint64_t items[] = {271, 272};
    uint64_t t0 = uv_hrtime();
    struct batch *b = consume(&e, 0, items, 2, 10, 2000);
    ck_assert_int_eq(b->status, SK_ERR);
    ck_assert_msg(strncmp(b->err, "redis not connected", 19) == 0, "%s", b->err);
    free(b);
    RUN_DONE(&e, x, e.qops->lag(e.q[0].conn, items, 2, on_lag, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis not connected") != NULL, "%s", x.err);
    struct sk_reservation rec = {.order_no = "u1", .user_id = 1, .activity_id = ACT, .item_id = 271, .seq = 1};
    RUN_DONE(&e, x, e.qops->publish(e.q[0].conn, &rec, 1, on_done, &x));
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "redis not connected") != NULL, "%s", x.err);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_msg(ms < 200, "failing took %llu ms", (unsigned long long)ms);
    /* Without a token there is nothing to acknowledge: refused in the call. */
    ck_assert_int_eq(e.qops->ack(e.q[0].conn, NULL, on_done, &x), SK_ERR);
    run_for(&e, 250);
    ck_assert_int_eq(e.qops->ready(e.q[0].conn), 0);
    RUN_DONE(&e, x, e.qops->lag(e.q[0].conn, items, 2, on_lag, &x));
    ck_assert_msg(x.status == SK_ERR && strstr(x.err, "Connection refused") != NULL, "%s", x.err);
    down(&e);
}
END_TEST

/* ---- cases: the loader and the config ------------------------------------ */

START_TEST(loader_checks_kind)
{
    struct env e;
    struct loaded l;
    char err[SK_ERRLEN] = "";
    env_loop(&e);
    /* The queue plugin configured as the stock plugin, and the other way round. */
    ck_assert_int_eq(load_file(&e, &l, SK_PLUGIN_STOCK, "redis_streams", "queue_redis_streams.so", "{}", err), SK_ERR);
    ck_assert_msg(strstr(err, "plugin \"redis_streams\" is a queue plugin, configured as stock") != NULL, "%s", err);
    ck_assert_int_eq(load_file(&e, &l, SK_PLUGIN_QUEUE, "redis", "stock_redis.so", "{}", err), SK_ERR);
    ck_assert_msg(strstr(err, "plugin \"redis\" is a stock plugin, configured as queue") != NULL, "%s", err);
    /* As a queue plugin it loads, with its descriptor. */
    ck_assert_msg(load(&e, &l, SK_PLUGIN_QUEUE, "redis_streams", "{}", err) == SK_OK, "%s", err);
    ck_assert_str_eq(l.p.desc->name, "redis_streams");
    ck_assert_int_eq(l.p.desc->kind, SK_PLUGIN_QUEUE);
    ck_assert_uint_ge(sk_plugin_queue_ops(&l.p)->size, sizeof(struct sk_queue_ops));
    unload(&l);
    uv_close((uv_handle_t *)&e.guard, NULL);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
}
END_TEST

START_TEST(bad_config_refused)
{
    static const char *const cases[][2] = {
        {"{\"group\":5}", "config key group: must be a string, not an integer"},
        {"{\"group\":\"\"}", "config key group: must be 1 to 63 bytes"},
        {"{\"consumer\":\"\"}", "config key consumer: must be 1 to 127 bytes"},
        {"{\"consumer\":\"a b\"}", "config key consumer: must not contain spaces"},
        {"{\"claim_idle_ms\":\"30s\"}",
         "config key claim_idle_ms: must be an integer from 1 to 86400000, not a string"},
        {"{\"claim_idle_ms\":0}", "config key claim_idle_ms: 0 is out of range (1 to 86400000)"},
        {"{\"port\":\"6390\"}", "config key port: must be an integer from 1 to 65535, not a string"},
        {"{\"db\":-1}", "config key db: -1 is out of range"},
        {"{\"key_prefix\":\"a{b\"}", "config key key_prefix: must not contain braces or spaces"},
        {"{\"password\":7}", "config key password: must be a string"},
        /* (the whole list is cut off by the host's sentence length here) */
        {"{\"colour\":\"red\"}", "config key colour: unknown key (known: host, port, db"},
        {"[1]", "config must be a mapping, not a list"},
        {"{\"host\":\"no-such-host.invalid\"}", "config key host: cannot resolve \"no-such-host.invalid\""},
    };
    struct env e;
    env_loop(&e);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loaded l;
        char err[SK_ERRLEN] = "";
        ck_assert_int_eq(load(&e, &l, SK_PLUGIN_QUEUE, "redis_streams", cases[i][0], err), SK_ERR);
        ck_assert_msg(
            strstr(err, "queue plugin \"redis_streams\" 1.0.0 refused its config (check_queue_redis_streams)") != NULL,
            "%s", err);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "config %s: %s", cases[i][0], err);
    }
    uv_close((uv_handle_t *)&e.guard, NULL);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
}
END_TEST

START_TEST(exports_only_sk_plugin)
{
    static const char *const files[] = {"queue_redis_streams.so", "stock_redis.so"};
    static const char *const hidden[] = {"sk_reslog_open", "sk_reslog_read",   "sk_reslog_ack",
                                         "sk_rconn_open",  "sk_rconn_command", "sk_rconn_defer",
                                         "sk_rconf_key",   "rs_ops",           "rs_create"};
    for (size_t f = 0; f < 2; f++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", plugin_build_dir(), files[f]);
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        ck_assert_msg(dl != NULL, "%s", dlerror());
        ck_assert_ptr_nonnull(dlsym(dl, "sk_plugin"));
        for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
            ck_assert_msg(dlsym(dl, hidden[i]) == NULL, "%s exports %s", files[f], hidden[i]);
        dlclose(dl);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_redis_streams");
    TCase *deliver = tcase_create("delivery");
    tcase_set_timeout(deliver, 30);
    tcase_add_test(deliver, consume_delivers_every_field);
    tcase_add_test(deliver, second_consumer_never_gets_acked);
    tcase_add_test(deliver, dead_consumer_entries_claimed);
    tcase_add_test(deliver, nack_redelivers_after_claim_idle);
    tcase_add_test(deliver, lag_counts_unacked_across_items);
    tcase_add_test(deliver, malformed_entries_are_bad_records);
    tcase_add_test(deliver, many_items_at_once);
    tcase_add_test(deliver, blocking_read_waits_for_new_entries);
    tcase_add_test(deliver, publish_appends_readable_records);
    tcase_add_test(deliver, group_made_again_after_log_deleted);
    suite_add_tcase(s, deliver);
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 30);
    tcase_add_test(faults, detach_with_read_in_flight);
    tcase_add_test(faults, unreachable_fails_fast);
    suite_add_tcase(s, faults);
    TCase *loader = tcase_create("loader");
    tcase_add_test(loader, loader_checks_kind);
    tcase_add_test(loader, bad_config_refused);
    tcase_add_test(loader, exports_only_sk_plugin);
    suite_add_tcase(s, loader);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
