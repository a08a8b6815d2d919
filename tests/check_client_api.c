/*
 * The buyers' API end to end: the real seckilld against the private Redis and
 * MariaDB. The catalog (GET /api/v1/activities, /activities/{id}, /items/{id}),
 * buyer authentication (JWT HS256), and the reservation hot path
 * (POST /api/v1/seckill): its window, per-user limits, thousands of concurrent
 * buyers against a small stock, bad input, and a Redis that dies and comes back.
 *
 * Every refusal is checked three ways: the status, the error code, and that the
 * item's keys in Redis (stock, buyers hash, orders hash, log stream) did not move.
 *
 * Tcase "daemon" shares one daemon (Redis db 7, database sktest_client) and each
 * test makes its own activities. Tcase "redis_down" runs its own redis-server on
 * a free port and a second daemon pointed at it, so that the stack's Redis, which
 * other suites share, is never stopped.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/auth/jwt.h"
#include "core/order_no.h"
#include "core/timeutil.h"
#include "support.h"

#define DB_NAME "sktest_client"
#define REDIS_DB 7
#define ORDER_TIMEOUT_MS (2 * 60 * 1000)
#define EXTRA_YAML "order_timeout: 2m\n"

/* The daemon and Redis the helpers talk to: the shared ones in tcase "daemon",
 * the private ones in tcase "redis_down". */
static struct sk_test_daemon daemon_;
static struct sk_test_daemon *d_;
static redisContext *redis_;

/* --- small helpers ---------------------------------------------------------------- */

static long call(const char *base, const char *method, const char *path, const char *bearer, const char *body,
                 struct sk_test_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return sk_test_http(method, url, bearer, body, NULL, r);
}

static long admin(const char *method, const char *path, const char *body, struct sk_test_resp *r)
{
    return call(d_->admin_url, method, path, SK_TEST_ADMIN_TOKEN, body, r);
}

static long client(const char *method, const char *path, const char *bearer, const char *body,
                   struct sk_test_resp *r)
{
    return call(d_->client_url, method, path, bearer, body, r);
}

/* A buyer token for user_id, valid for an hour, signed with `secret`. */
static void token_with(const char *secret, uint64_t user_id, int64_t exp_s, char *out, size_t outlen)
{
    ck_assert_int_eq(sk_jwt_mint(secret, strlen(secret), user_id, exp_s, out, outlen), 0);
}

static void token(uint64_t user_id, char *out, size_t outlen)
{
    token_with(SK_TEST_JWT_SECRET, user_id, sk_now_ms() / 1000 + 3600, out, outlen);
}

static long reserve(const char *bearer, json_int_t activity_id, json_int_t item_id, struct sk_test_resp *r)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)activity_id,
             (long long)item_id);
    return client("POST", "/api/v1/seckill", bearer, body, r);
}

/* Reserve as user_id and expect `status` with error `code` ("" for 200). */
static void reserve_expect(uint64_t user_id, json_int_t activity_id, json_int_t item_id, long status,
                           const char *code)
{
    char tok[SK_JWT_MAX_LEN];
    struct sk_test_resp r;
    token(user_id, tok, sizeof(tok));
    long st = reserve(tok, activity_id, item_id, &r);
    int ok = st == status && strcmp(sk_test_err_code(&r), code) == 0;
    char got[512];
    snprintf(got, sizeof(got), "%s", r.body ? r.body : "(no body)");
    sk_test_resp_free(&r);
    ck_assert_msg(ok, "user %llu, activity %lld, item %lld: expected %ld %s, got %ld %s", (unsigned long long)user_id,
                  (long long)activity_id, (long long)item_id, status, code, st, got);
}

/* An order number as order_no.h shapes it: a 26-character ULID, '_', and the
 * item's id. */
static void assert_order_no(const char *order_no, json_int_t item_id)
{
    uint64_t parsed = 0;
    ck_assert_ptr_nonnull(order_no);
    ck_assert_msg(sk_order_no_parse(order_no, strlen(order_no), &parsed) == 0 && parsed == (uint64_t)item_id,
                  "order number \"%s\" is not one of item %lld", order_no, (long long)item_id);
    ck_assert_msg(strlen(order_no) > SK_ULID_LEN && order_no[SK_ULID_LEN] == '_', "order number \"%s\"", order_no);
}

/* Create an activity whose window is [now + starts_in, now + ends_in) (ms) with
 * `n_items` items: item k has sku I<k>, stock stocks[k], per_user_limit limits[k].
 * Returns its id and the items' ids in item_ids. */
static json_int_t create_activity(int64_t starts_in, int64_t ends_in, size_t n_items, const long long *stocks,
                                  const int *limits, json_int_t *item_ids)
{
    char s[SK_TIME_TEXT_LEN], e[SK_TIME_TEXT_LEN];
    int64_t now = sk_now_ms();
    sk_time_format(now + starts_in, s);
    sk_time_format(now + ends_in, e);
    json_t *items = json_array();
    for (size_t k = 0; k < n_items; k++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "I%zu", k);
        json_array_append_new(items, json_pack("{s:s, s:s, s:I, s:I, s:I, s:i}", "sku", sku, "title", "秒杀手机",
                                               "price_cents", (json_int_t)399900, "seckill_price_cents",
                                               (json_int_t)(99900 + k), "stock", (json_int_t)stocks[k],
                                               "per_user_limit", limits[k]));
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o}", "name", "client api", "starts_at", s, "ends_at", e, "items", items);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct sk_test_resp r;
    long st = admin("POST", "/admin/v1/activities", body, &r);
    free(body);
    ck_assert_msg(st == 201, "create: %ld %s", st, r.body);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    json_t *got = json_object_get(r.json, "items");
    ck_assert_uint_eq(json_array_size(got), n_items);
    for (size_t k = 0; k < n_items; k++)
        item_ids[k] = json_integer_value(json_object_get(json_array_get(got, k), "id"));
    sk_test_resp_free(&r);
    return id;
}

/* An activity that starts in START_IN_MS and ends in ten minutes, with one item.
 * (Publishing "now" is refused once starts_at has passed, so a running sale is one
 * published just before its start.) */
#define START_IN_MS 700
static json_int_t create_running(long long stock, int limit, json_int_t *item_id)
{
    return create_activity(START_IN_MS, 600000, 1, &stock, &limit, item_id);
}

static void publish_now(json_int_t id)
{
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)id);
    long st = admin("POST", path, NULL, &r);
    ck_assert_msg(st == 200, "publish: %ld %s", st, r.body);
    sk_test_resp_free(&r);
}

/* Wait until the buyers' catalog shows the item (the scheduler has published it
 * and rebuilt the catalog). */
static void wait_on_sale(json_int_t item_id)
{
    char path[128];
    long st = 0;
    snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)item_id);
    for (int i = 0; i < 100 && st != 200; i++) { /* 5 s */
        struct sk_test_resp r;
        st = client("GET", path, NULL, NULL, &r);
        sk_test_resp_free(&r);
        if (st != 200)
            sk_test_sleep_ms(50);
    }
    ck_assert_msg(st == 200, "item %lld did not reach the buyers' catalog within 5 s (last %ld)", (long long)item_id,
                  st);
}

/* Wait until an activity created at `created_ms` with START_IN_MS has started. */
static void wait_started(int64_t created_ms)
{
    int64_t wait = created_ms + START_IN_MS + 50 - sk_now_ms();
    if (wait > 0)
        sk_test_sleep_ms((int)wait);
}

/* A published, running activity with one item. */
static json_int_t publish_running(long long stock, int limit, json_int_t *item_id)
{
    int64_t created = sk_now_ms();
    json_int_t id = create_running(stock, limit, item_id);
    publish_now(id);
    wait_on_sale(*item_id);
    wait_started(created);
    return id;
}

/* --- Redis state of one item ---------------------------------------------------- */

struct rstate {
    long long stock;      /* -1 when the key is absent */
    long long buyers_n;   /* fields in the buyers hash */
    long long buyers_sum; /* units held, summed */
    long long buyers_max; /* the most one buyer holds */
    long long orders_n;
    long long log_n;
    long long seq_sum;    /* units ever reserved, summed over buyers */
};

static long long redis_int(const char *fmt, json_int_t item_id)
{
    redisReply *r = redisCommand(redis_, fmt, (long long)item_id);
    ck_assert_msg(r != NULL, "redis: %s", redis_->errstr);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "redis: unexpected reply type %d", r->type);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void rstate_get(json_int_t item_id, struct rstate *s)
{
    memset(s, 0, sizeof(*s));
    redisReply *r = redisCommand(redis_, "GET sk:{item:%lld}:stock", (long long)item_id);
    ck_assert_msg(r != NULL, "redis: %s", redis_->errstr);
    s->stock = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    r = redisCommand(redis_, "HVALS sk:{item:%lld}:buyers", (long long)item_id);
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_ARRAY, "redis HVALS failed");
    s->buyers_n = (long long)r->elements;
    for (size_t i = 0; i < r->elements; i++) {
        long long v = atoll(r->element[i]->str);
        s->buyers_sum += v;
        if (v > s->buyers_max)
            s->buyers_max = v;
    }
    freeReplyObject(r);
    r = redisCommand(redis_, "HVALS sk:{item:%lld}:seq", (long long)item_id);
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_ARRAY, "redis HVALS failed");
    for (size_t i = 0; i < r->elements; i++)
        s->seq_sum += atoll(r->element[i]->str);
    freeReplyObject(r);
    s->orders_n = redis_int("HLEN sk:{item:%lld}:orders", item_id);
    s->log_n = redis_int("XLEN sk:{item:%lld}:log", item_id);
}

#define RSTATE_FMT "stock %lld, buyers %lld (sum %lld, max %lld), orders %lld, log %lld, seq %lld"
#define RSTATE_ARGS(s) (s).stock, (s).buyers_n, (s).buyers_sum, (s).buyers_max, (s).orders_n, (s).log_n, (s).seq_sum

/* The item's keys are exactly as in `before`. */
static void rstate_unchanged(json_int_t item_id, const struct rstate *before, const char *what)
{
    struct rstate now;
    rstate_get(item_id, &now);
    ck_assert_msg(memcmp(&now, before, sizeof(now)) == 0, "%s changed Redis: before " RSTATE_FMT ", after " RSTATE_FMT,
                  what, RSTATE_ARGS(*before), RSTATE_ARGS(now));
}

/* One counter of /metrics, or -1 when absent. */
static long long metric(const char *series)
{
    struct sk_test_resp r;
    long long v = -1;
    ck_assert_int_eq(client("GET", "/metrics", NULL, NULL, &r), 200);
    size_t n = strlen(series);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = atoll(p + n + 1);
            break;
        }
    sk_test_resp_free(&r);
    return v;
}

/* --- tcase "daemon" ------------------------------------------------------------- */

static void setup(void)
{
    d_ = &daemon_;
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, EXTRA_YAML, 0);
    redis_ = sk_test_redis(REDIS_DB);
}

static void teardown(void)
{
    if (redis_)
        redisFree(redis_);
    redis_ = NULL;
    sk_test_daemon_stop(&daemon_, SIGTERM);
}

static json_t *find_by_id(json_t *arr, json_int_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_integer_value(json_object_get(v, "id")) == id)
            return v;
    }
    return NULL;
}

static void assert_server_time(const struct sk_test_resp *r)
{
    int64_t t = 0, now = sk_now_ms();
    const char *text = json_string_value(json_object_get(r->json, "server_time"));
    ck_assert_msg(text != NULL, "no server_time in %s", r->body);
    ck_assert_int_eq(sk_time_parse(text, &t), 0);
    ck_assert_msg(t > now - 5000 && t <= now + 5000, "server_time %s is not now", text);
}

START_TEST(catalog_lists_published)
{
    long long stocks[2] = {40, 7};
    int limits[2] = {1, 3};
    json_int_t items[2], draft_item, sched_item;
    int64_t created = sk_now_ms();
    json_int_t id = create_activity(START_IN_MS, 600000, 2, stocks, limits, items);
    publish_now(id);
    wait_on_sale(items[0]);
    /* a draft and a scheduled activity (publish_at in the future) stay out */
    long long one = 5;
    int lim = 1;
    json_int_t draft = create_activity(-60000, 600000, 1, &one, &lim, &draft_item);
    json_int_t sched = create_activity(300000, 600000, 1, &one, &lim, &sched_item);
    char path[160], at[SK_TIME_TEXT_LEN], body[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)sched);
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", sk_time_format(sk_now_ms() + 120000, at));
    ck_assert_int_eq(admin("POST", path, body, &r), 200);
    sk_test_resp_free(&r);
    sk_test_sleep_ms(300); /* a few scheduler ticks */
    wait_started(created);

    ck_assert_int_eq(client("GET", "/api/v1/activities", NULL, NULL, &r), 200);
    assert_server_time(&r);
    json_t *acts = json_object_get(r.json, "activities");
    ck_assert(json_is_array(acts));
    json_t *a = find_by_id(acts, id);
    ck_assert_msg(a != NULL, "published activity %lld not listed: %s", (long long)id, r.body);
    ck_assert_msg(find_by_id(acts, draft) == NULL, "draft activity listed: %s", r.body);
    ck_assert_msg(find_by_id(acts, sched) == NULL, "scheduled activity listed: %s", r.body);
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "client api");
    ck_assert_str_eq(json_string_value(json_object_get(a, "state")), "running");
    json_t *its = json_object_get(a, "items");
    ck_assert_uint_eq(json_array_size(its), 2);
    for (int k = 0; k < 2; k++) {
        json_t *it = find_by_id(its, items[k]);
        ck_assert_ptr_nonnull(it);
        ck_assert_int_eq(json_integer_value(json_object_get(it, "seckill_price_cents")), 99900 + k);
        ck_assert_int_eq(json_integer_value(json_object_get(it, "price_cents")), 399900);
        ck_assert_int_eq(json_integer_value(json_object_get(it, "remaining")), stocks[k]);
        ck_assert_int_eq(json_integer_value(json_object_get(it, "per_user_limit")), limits[k]);
    }
    sk_test_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/activities/%lld", (long long)id);
    ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), id);
    ck_assert_uint_eq(json_array_size(json_object_get(r.json, "items")), 2);
    assert_server_time(&r);
    sk_test_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)items[1]);
    ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), items[1]);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "activity_id")), id);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "seckill_price_cents")), 99901);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "remaining")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "activity_state")), "running");
    assert_server_time(&r);
    sk_test_resp_free(&r);

    /* unknown ids, and the draft's and the scheduled one's ids, are 404 */
    const json_int_t absent_acts[] = {99999999, draft, sched};
    const json_int_t absent_items[] = {99999999, draft_item, sched_item};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/api/v1/activities/%lld", (long long)absent_acts[i]);
        ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 404);
        ck_assert_str_eq(sk_test_err_code(&r), "not_found");
        sk_test_resp_free(&r);
        snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)absent_items[i]);
        ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 404);
        ck_assert_str_eq(sk_test_err_code(&r), "not_found");
        sk_test_resp_free(&r);
    }
    ck_assert_int_eq(client("GET", "/api/v1/items/abc", NULL, NULL, &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    ck_assert_int_eq(client("DELETE", "/api/v1/activities", NULL, NULL, &r), 405);
    ck_assert_str_eq(sk_test_err_code(&r), "method_not_allowed");
    sk_test_resp_free(&r);

    /* a draft's item cannot be reserved, and nothing of it reaches Redis */
    struct rstate none;
    rstate_get(draft_item, &none);
    ck_assert_int_eq(none.stock, -1);
    reserve_expect(1001, draft, draft_item, 404, "not_found");
    rstate_unchanged(draft_item, &none, "reserving a draft's item");
}
END_TEST

START_TEST(auth_refused)
{
    json_int_t item;
    json_int_t id = publish_running(10, 1, &item);
    struct rstate before;
    rstate_get(item, &before);
    ck_assert_int_eq(before.stock, 10);

    char good[SK_JWT_MAX_LEN], expired[SK_JWT_MAX_LEN], other[SK_JWT_MAX_LEN], badsig[SK_JWT_MAX_LEN];
    char forged[SK_JWT_MAX_LEN], zero[SK_JWT_MAX_LEN];
    token(2001, good, sizeof(good));
    token_with(SK_TEST_JWT_SECRET, 2002, sk_now_ms() / 1000 - 60, expired, sizeof(expired));
    token_with("another-secret-0123456789abcdef", 2003, sk_now_ms() / 1000 + 3600, other, sizeof(other));
    token_with(SK_TEST_JWT_SECRET, 0, sk_now_ms() / 1000 + 3600, zero, sizeof(zero));
    /* flip the first character of the signature: its bits all count */
    snprintf(badsig, sizeof(badsig), "%s", good);
    char *sig = strrchr(badsig, '.');
    ck_assert_ptr_nonnull(sig);
    sig[1] = sig[1] == 'A' ? 'B' : 'A';
    /* another user's payload under a real signature */
    char *p1 = strchr(good, '.'), *p2 = strrchr(good, '.');
    snprintf(forged, sizeof(forged), "%.*s.eyJzdWIiOiI1IiwiZXhwIjo0MTAyNDQ0ODAwfQ%s", (int)(p1 - good), good, p2);

    const char *bad[] = {
        NULL,     /* no Authorization header */
        "",       /* "Bearer " and nothing */
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.", /* alg none */
        expired,
        other,
        badsig,
        forged,
        zero,
    };
    char body[128];
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)id, (long long)item);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sk_test_resp r;
        long st = client("POST", "/api/v1/seckill", bad[i], body, &r);
        ck_assert_msg(st == 401 && strcmp(sk_test_err_code(&r), "unauthorized") == 0,
                      "token #%zu (%s): expected 401 unauthorized, got %ld %s", i, bad[i] ? bad[i] : "none", st,
                      r.body);
        sk_test_resp_free(&r);
        rstate_unchanged(item, &before, "a refused token");
    }
    /* another scheme than Bearer */
    char url[256];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/api/v1/seckill", d_->client_url);
    ck_assert_int_eq(sk_test_http("POST", url, NULL, body, "Authorization: Basic dXNlcjpwYXNz", &r), 401);
    ck_assert_str_eq(sk_test_err_code(&r), "unauthorized");
    sk_test_resp_free(&r);
    rstate_unchanged(item, &before, "a Basic authorization");

    /* and the good token still works */
    ck_assert_int_eq(reserve(good, id, item, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(reserve_happy_path)
{
    json_int_t item;
    json_int_t id = publish_running(25, 1, &item);
    char tok[SK_JWT_MAX_LEN];
    struct sk_test_resp r;
    token(3001, tok, sizeof(tok));
    int64_t t0 = sk_now_ms();
    long st = reserve(tok, id, item, &r);
    int64_t t1 = sk_now_ms();
    ck_assert_msg(st == 200, "reserve: %ld %s", st, r.body);
    const char *order_no = json_string_value(json_object_get(r.json, "order_no"));
    ck_assert_ptr_nonnull(order_no);
    assert_order_no(order_no, item);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "reserved");
    int64_t exp = 0;
    const char *exp_text = json_string_value(json_object_get(r.json, "expires_at"));
    ck_assert_ptr_nonnull(exp_text);
    ck_assert_int_eq(sk_time_parse(exp_text, &exp), 0);
    ck_assert_msg(exp >= t0 + ORDER_TIMEOUT_MS - 1000 && exp <= t1 + ORDER_TIMEOUT_MS + 1000,
                  "expires_at %s is not now + 2m", exp_text);

    /* Redis: one unit taken, by this buyer, under this order number, logged once */
    struct rstate s;
    rstate_get(item, &s);
    ck_assert_msg(s.stock == 24 && s.buyers_n == 1 && s.buyers_sum == 1 && s.orders_n == 1 && s.log_n == 1,
                  RSTATE_FMT, RSTATE_ARGS(s));
    redisReply *rr = redisCommand(redis_, "HGET sk:{item:%lld}:orders %s", (long long)item, order_no);
    ck_assert(rr != NULL && rr->type == REDIS_REPLY_STRING);
    ck_assert_msg(atoll(rr->str) == 3001, "orders[%s] = %s, not user 3001's", order_no, rr->str);
    freeReplyObject(rr);
    rr = redisCommand(redis_, "HGET sk:{item:%lld}:buyers 3001", (long long)item);
    ck_assert(rr != NULL && rr->type == REDIS_REPLY_STRING);
    ck_assert_str_eq(rr->str, "1");
    freeReplyObject(rr);
    rr = redisCommand(redis_, "XRANGE sk:{item:%lld}:log - +", (long long)item);
    ck_assert(rr != NULL && rr->type == REDIS_REPLY_ARRAY && rr->elements == 1);
    redisReply *fields = rr->element[0]->element[1];
    int seen = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (strcmp(k, "order_no") == 0)
            seen += strcmp(v, order_no) == 0;
        else if (strcmp(k, "user_id") == 0)
            seen += strcmp(v, "3001") == 0;
        else if (strcmp(k, "activity_id") == 0)
            seen += atoll(v) == id;
        else if (strcmp(k, "item_id") == 0)
            seen += atoll(v) == item;
        else if (strcmp(k, "expires_at_ms") == 0)
            seen += atoll(v) == exp;
    }
    ck_assert_int_eq(seen, 5);
    freeReplyObject(rr);
    sk_test_resp_free(&r);

    /* the catalog's remaining follows */
    char path[128];
    long long remaining = -1;
    snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)item);
    for (int i = 0; i < 20 && remaining != 24; i++) {
        ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 200);
        remaining = json_integer_value(json_object_get(r.json, "remaining"));
        sk_test_resp_free(&r);
        if (remaining != 24)
            sk_test_sleep_ms(100);
    }
    ck_assert_int_eq(remaining, 24);
}
END_TEST

/* Not started before starts_at, sells inside the window, ended after ends_at. */
START_TEST(reserve_window)
{
    long long stock = 10;
    int limit = 1;
    json_int_t item;
    json_int_t id = create_activity(1500, 3500, 1, &stock, &limit, &item);
    int64_t starts = sk_now_ms() + 1500; /* upper bound: created a moment ago */
    publish_now(id);
    wait_on_sale(item);
    struct rstate before;
    rstate_get(item, &before);
    ck_assert_int_eq(before.stock, 10);
    ck_assert_msg(sk_now_ms() < starts - 200, "publishing took too long to test before the start");
    reserve_expect(4001, id, item, 409, "not_started");
    rstate_unchanged(item, &before, "a reservation before the start");

    int64_t wait = starts - sk_now_ms() + 200;
    sk_test_sleep_ms((int)(wait > 0 ? wait : 0));
    reserve_expect(4001, id, item, 200, "");
    rstate_get(item, &before);
    ck_assert_int_eq(before.stock, 9);

    wait = starts + 2000 - sk_now_ms() + 300;
    sk_test_sleep_ms((int)(wait > 0 ? wait : 0));
    reserve_expect(4002, id, item, 409, "ended");
    rstate_unchanged(item, &before, "a reservation after the end");
    /* a buyer late by a second is still told the sale ended, not that it never was */
    sk_test_sleep_ms(1000);
    reserve_expect(4003, id, item, 409, "ended");
    rstate_unchanged(item, &before, "a reservation a second after the end");
}
END_TEST

START_TEST(per_user_limit)
{
    long long stocks[2] = {50, 50};
    int limits[2] = {1, 2};
    json_int_t items[2];
    int64_t created = sk_now_ms();
    json_int_t id = create_activity(START_IN_MS, 600000, 2, stocks, limits, items);
    publish_now(id);
    wait_on_sale(items[0]);
    wait_on_sale(items[1]);
    wait_started(created);

    /* limit 1 */
    reserve_expect(5001, id, items[0], 200, "");
    struct rstate s;
    rstate_get(items[0], &s);
    reserve_expect(5001, id, items[0], 409, "limit_reached");
    rstate_unchanged(items[0], &s, "a second unit with limit 1");
    reserve_expect(5001, id, items[0], 409, "limit_reached");
    rstate_unchanged(items[0], &s, "a third unit with limit 1");
    /* the limit is per buyer: another buyer still gets one */
    reserve_expect(5002, id, items[0], 200, "");
    rstate_get(items[0], &s);
    ck_assert_msg(s.stock == 48 && s.buyers_n == 2 && s.buyers_max == 1 && s.log_n == 2, RSTATE_FMT, RSTATE_ARGS(s));

    /* limit 2, and per item: 5001 holds item 0 yet gets two of item 1 */
    reserve_expect(5001, id, items[1], 200, "");
    reserve_expect(5001, id, items[1], 200, "");
    rstate_get(items[1], &s);
    ck_assert_msg(s.stock == 48 && s.buyers_n == 1 && s.buyers_sum == 2 && s.orders_n == 2 && s.log_n == 2,
                  RSTATE_FMT, RSTATE_ARGS(s));
    reserve_expect(5001, id, items[1], 409, "limit_reached");
    rstate_unchanged(items[1], &s, "a third unit with limit 2");
}
END_TEST

/* --- concurrency ---------------------------------------------------------------- */

#define N_BUYERS 3000
#define N_STOCK 300
#define N_PARALLEL 200

struct xfer {
    CURL *h;
    struct curl_slist *hdrs;
    char *buf;
    size_t len;
    long status;
    char order_no[SK_ORDER_NO_MAX + 1];
    char code[32];
};

static size_t xfer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    char *p = realloc(x->buf, x->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + x->len, ptr, n);
    x->len += n;
    p[x->len] = '\0';
    x->buf = p;
    return n;
}

static void xfer_start(CURLM *m, struct xfer *x, uint64_t user_id, const char *url, const char *body)
{
    char tok[SK_JWT_MAX_LEN], auth[SK_JWT_MAX_LEN + 32];
    token(user_id, tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    x->hdrs = curl_slist_append(NULL, auth);
    x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    x->h = curl_easy_init();
    ck_assert_ptr_nonnull(x->h);
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    ck_assert_int_eq(curl_multi_add_handle(m, x->h), CURLM_OK);
}

static void xfer_done(CURLM *m, struct xfer *x, CURLcode result)
{
    if (result == CURLE_OK)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    json_t *doc = x->buf ? json_loads(x->buf, 0, NULL) : NULL;
    const char *o = json_string_value(json_object_get(doc, "order_no"));
    const char *c = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    snprintf(x->order_no, sizeof(x->order_no), "%s", o ? o : "");
    snprintf(x->code, sizeof(x->code), "%s", c ? c : "");
    json_decref(doc);
    curl_multi_remove_handle(m, x->h);
    curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdrs);
    free(x->buf);
    x->h = NULL;
    x->hdrs = NULL;
    x->buf = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(concurrent_buyers_sell_out_exactly)
{
    json_int_t item;
    json_int_t id = publish_running(N_STOCK, 1, &item);
    char url[256], body[128];
    snprintf(url, sizeof(url), "%s/api/v1/seckill", d_->client_url);
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)id, (long long)item);
    struct xfer *xs = calloc(N_BUYERS, sizeof(*xs));
    ck_assert_ptr_nonnull(xs);

    CURLM *m = curl_multi_init();
    ck_assert_ptr_nonnull(m);
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N_PARALLEL);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)N_PARALLEL);
    size_t next = 0, done = 0;
    int active = 0;
    int64_t deadline = sk_mono_ms() + 45000, t0 = sk_mono_ms();
    while (done < N_BUYERS && sk_mono_ms() < deadline) {
        while (active < N_PARALLEL && next < N_BUYERS) {
            xfer_start(m, &xs[next], 100000 + next, url, body);
            next++;
            active++;
        }
        int running = 0;
        ck_assert_int_eq(curl_multi_perform(m, &running), CURLM_OK);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            ck_assert_ptr_nonnull(priv);
            xfer_done(m, (struct xfer *)(void *)priv, msg->data.result);
            done++;
            active--;
        }
        if (done < N_BUYERS)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (size_t i = 0; i < next; i++)
        if (xs[i].h != NULL)
            xfer_done(m, &xs[i], CURLE_OPERATION_TIMEDOUT);
    curl_multi_cleanup(m);
    fprintf(stderr, "check_client_api: %zu buyers answered in %lld ms\n", done, (long long)(sk_mono_ms() - t0));
    ck_assert_msg(done == N_BUYERS, "only %zu of %d buyers were answered within 45 s", done, N_BUYERS);

    /* exactly N_STOCK reservations with distinct order numbers, sold_out for the rest */
    char **orders = calloc(N_STOCK, sizeof(*orders));
    size_t n_ok = 0, n_sold_out = 0;
    for (size_t i = 0; i < N_BUYERS; i++) {
        if (xs[i].status == 200) {
            assert_order_no(xs[i].order_no, item);
            if (n_ok < N_STOCK)
                orders[n_ok] = xs[i].order_no;
            n_ok++;
        } else if (xs[i].status == 409 && strcmp(xs[i].code, "sold_out") == 0) {
            n_sold_out++;
        } else {
            ck_abort_msg("buyer %zu: unexpected answer %ld %s", i, xs[i].status, xs[i].code);
        }
    }
    ck_assert_int_eq(n_ok, N_STOCK);
    ck_assert_int_eq(n_sold_out, N_BUYERS - N_STOCK);
    qsort(orders, N_STOCK, sizeof(*orders), cmp_str);
    for (size_t i = 1; i < N_STOCK; i++)
        ck_assert_msg(strcmp(orders[i - 1], orders[i]) != 0, "order number %s given twice", orders[i]);

    /* Redis agrees: nothing left, one log entry and one order per unit, nobody above 1 */
    struct rstate s;
    rstate_get(item, &s);
    ck_assert_msg(s.stock == 0 && s.log_n == N_STOCK && s.buyers_n == N_STOCK && s.buyers_sum == N_STOCK &&
                      s.buyers_max == 1 && s.orders_n == N_STOCK,
                  RSTATE_FMT, RSTATE_ARGS(s));
    for (size_t i = 0; i < N_BUYERS; i++) {
        if (xs[i].status != 200)
            continue;
        redisReply *rr = redisCommand(redis_, "HGET sk:{item:%lld}:orders %s", (long long)item, xs[i].order_no);
        ck_assert(rr != NULL && rr->type == REDIS_REPLY_STRING);
        ck_assert_int_eq(atoll(rr->str), 100000 + (long long)i);
        freeReplyObject(rr);
    }
    free(orders);
    free(xs);

    /* Sold out now: the daemon knows it locally and does not ask Redis. */
    sk_test_sleep_ms(300);
    const char *local = "seckill_reservations_total{outcome=\"sold_out_local\"}";
    const char *remote = "seckill_reservations_total{outcome=\"sold_out\"}";
    long long local0 = metric(local), remote0 = metric(remote);
    ck_assert_int_ge(local0, 0);
    ck_assert_int_ge(remote0, 0);
    for (int i = 0; i < 40; i++)
        reserve_expect(200000 + (uint64_t)i, id, item, 409, "sold_out");
    rstate_unchanged(item, &s, "reservations after the sell-out");
    long long local1 = metric(local), remote1 = metric(remote);
    ck_assert_int_eq((local1 - local0) + (remote1 - remote0), 40);
    /* at most one trip to Redis, should a catalog rebuild have raced with the flag */
    ck_assert_msg(local1 - local0 >= 39, "only %lld of 40 refusals answered locally", local1 - local0);

    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)item);
    ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "remaining")), 0);
    ck_assert(json_is_true(json_object_get(r.json, "sold_out")));
    sk_test_resp_free(&r);
}
END_TEST

/* --- bad input ------------------------------------------------------------------ */

START_TEST(bad_input_changes_nothing)
{
    long long stocks[1] = {20};
    int limits[1] = {1};
    json_int_t item, other_item;
    json_int_t id = publish_running(stocks[0], limits[0], &item);
    json_int_t other = publish_running(5, 1, &other_item);
    char tok[SK_JWT_MAX_LEN];
    token(6001, tok, sizeof(tok));
    struct rstate before, before_other;
    rstate_get(item, &before);
    rstate_get(other_item, &before_other);

    char b[20][192];
    int n = 0;
    struct {
        const char *body;
        long status;
        const char *code;
    } cases[20];
#define CASE(st, c, ...)                                                                                          \
    do {                                                                                                          \
        snprintf(b[n], sizeof(b[n]), __VA_ARGS__);                                                                \
        cases[n].body = b[n];                                                                                     \
        cases[n].status = st;                                                                                     \
        cases[n].code = c;                                                                                        \
        n++;                                                                                                      \
    } while (0)
    long long a = id, i = item;
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":", a);
    CASE(400, "bad_request", "[%lld,%lld]", a, i);
    CASE(400, "bad_request", "\"%lld\"", a);
    CASE(400, "bad_request", "null");
    CASE(400, "bad_request", " ");
    CASE(400, "bad_request", "{\"activity_id\":\"%lld\",\"item_id\":%lld}", a, i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":\"%lld\"}", a, i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":%lld.5}", a, i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":-1}", a);
    CASE(400, "bad_request", "{\"activity_id\":0,\"item_id\":%lld}", i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":99999999999999999999999}", a);
    CASE(400, "bad_request", "{\"activity_id\":%lld}", a);
    CASE(400, "bad_request", "{\"item_id\":%lld}", i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":%lld,\"qty\":2}", a, i);
    CASE(400, "bad_request", "{\"activity_id\":%lld,\"item_id\":%lld,\"item_id\":%lld}", a, i, (long long)other_item);
    CASE(404, "not_found", "{\"activity_id\":99999999,\"item_id\":%lld}", i);
    CASE(404, "not_found", "{\"activity_id\":%lld,\"item_id\":99999999}", a);
    CASE(404, "not_found", "{\"activity_id\":%lld,\"item_id\":%lld}", a, (long long)other_item);
    CASE(404, "not_found", "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)other, i);
#undef CASE
    for (int k = 0; k < n; k++) {
        struct sk_test_resp r;
        long st = client("POST", "/api/v1/seckill", tok, cases[k].body, &r);
        ck_assert_msg(st == cases[k].status && strcmp(sk_test_err_code(&r), cases[k].code) == 0,
                      "body %s: expected %ld %s, got %ld %s", cases[k].body, cases[k].status, cases[k].code, st,
                      r.body);
        const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        ck_assert_msg(msg != NULL && msg[0] != '\0', "body %s: no error message", cases[k].body);
        sk_test_resp_free(&r);
        rstate_unchanged(item, &before, cases[k].body);
        rstate_unchanged(other_item, &before_other, cases[k].body);
    }

    /* bodies above http.max_body_bytes (16 KiB by default): a little, and far */
    const size_t sizes[] = {20000, 200000};
    for (size_t k = 0; k < 2; k++) {
        char *huge = malloc(sizes[k] + 1);
        ck_assert_ptr_nonnull(huge);
        int head = snprintf(huge, sizes[k], "{\"activity_id\":%lld,\"item_id\":%lld,\"pad\":\"", a, i);
        memset(huge + head, 'x', sizes[k] - (size_t)head - 2);
        memcpy(huge + sizes[k] - 2, "\"}", 3);
        struct sk_test_resp r;
        long st = client("POST", "/api/v1/seckill", tok, huge, &r);
        free(huge);
        ck_assert_msg(st == 413, "a %zu-byte body: expected 413, got %ld %s", sizes[k], st, r.body);
        if (k == 0)
            ck_assert_str_eq(sk_test_err_code(&r), "payload_too_large");
        sk_test_resp_free(&r);
        rstate_unchanged(item, &before, "a huge body");
    }

    /* the wrong method and path */
    struct sk_test_resp r;
    ck_assert_int_eq(client("GET", "/api/v1/seckill", tok, NULL, &r), 405);
    ck_assert_str_eq(sk_test_err_code(&r), "method_not_allowed");
    sk_test_resp_free(&r);
    ck_assert_int_eq(client("POST", "/api/v1/seckill/1", tok, "{}", &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    rstate_unchanged(item, &before, "wrong routes");

    /* the daemon keeps serving: health, and the same buyer's valid reservation */
    ck_assert_int_eq(client("GET", "/healthz", NULL, NULL, &r), 200);
    sk_test_resp_free(&r);
    ck_assert_int_eq(reserve(tok, id, item, &r), 200);
    sk_test_resp_free(&r);
    struct rstate after;
    rstate_get(item, &after);
    ck_assert_msg(after.stock == before.stock - 1 && after.log_n == before.log_n + 1, RSTATE_FMT, RSTATE_ARGS(after));
}
END_TEST

START_TEST(graceful_stop)
{
    int st = sk_test_daemon_stop(&daemon_, SIGTERM);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        sk_test_daemon_dump_log(&daemon_);
        ck_abort_msg("seckilld did not stop cleanly on SIGTERM (status %d)", st);
    }
}
END_TEST

/* --- tcase "redis_down": a private redis-server that the test kills ------------- */

static pid_t redis_pid_;
static int redis_port_;
static char redis_dir_[256];
static struct sk_test_daemon daemon2_;

static void private_redis_start(void)
{
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        char port[16], log[320];
        snprintf(port, sizeof(port), "%d", redis_port_);
        snprintf(log, sizeof(log), "%s/redis.log", redis_dir_);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        if (chdir(redis_dir_) != 0)
            _exit(126);
        /* AOF with fsync per write, as the project's stack runs it: a reservation
         * answered before the crash is still there after the restart */
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", redis_dir_, "--save",
               "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    redis_pid_ = pid;
    for (int i = 0; i < 100; i++) { /* 5 s */
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port_, tv);
        int ok = 0;
        if (c != NULL && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
        if (ok)
            return;
        ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "redis-server exited at start (see %s/redis.log)",
                      redis_dir_);
        sk_test_sleep_ms(50);
    }
    ck_abort_msg("redis-server on port %d did not answer PING within 5 s", redis_port_);
}

static void private_redis_kill(void)
{
    if (redis_pid_ > 0) {
        kill(redis_pid_, SIGKILL);
        waitpid(redis_pid_, NULL, 0);
    }
    redis_pid_ = 0;
}

static redisContext *private_redis_connect(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port_, tv);
    ck_assert_msg(c != NULL && !c->err, "private redis on %d not reachable", redis_port_);
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    ck_assert(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return c;
}

/* As the suite's daemon, but the stock plugin talks to the private redis. */
static void private_daemon_start(struct sk_test_daemon *d)
{
    memset(d, 0, sizeof(*d));
    d->redis_port = redis_port_;
    sk_test_daemon_start(d, DB_NAME, REDIS_DB, "order_timeout: 2m\n", 0);
}

/* Check skips the teardown when an unchecked setup fails: never leave the
 * private redis-server behind. */
static void private_redis_atexit(void)
{
    private_redis_kill();
}

static void setup_redis_down(void)
{
    atexit(private_redis_atexit);
    snprintf(redis_dir_, sizeof(redis_dir_), "/tmp/sktest-%s-redis-XXXXXX", DB_NAME);
    ck_assert_msg(mkdtemp(redis_dir_) != NULL, "mkdtemp: %s", strerror(errno));
    redis_port_ = sk_test_free_port();
    private_redis_start();
    private_daemon_start(&daemon2_);
    d_ = &daemon2_;
}

static void teardown_redis_down(void)
{
    if (redis_)
        redisFree(redis_);
    redis_ = NULL;
    sk_test_daemon_stop(&daemon2_, SIGTERM);
    private_redis_kill();
}

/* Ask /readyz `tries` times (the workers answer in turn; each has its own Redis
 * connection) and count the answers with that status and that stock check. */
static int readyz_count(int tries, long status, int stock)
{
    int n = 0;
    for (int i = 0; i < tries; i++) {
        struct sk_test_resp r;
        long st = client("GET", "/readyz", NULL, NULL, &r);
        json_t *s = json_object_get(json_object_get(r.json, "checks"), "stock");
        if (st == status && json_is_boolean(s) && json_is_true(s) == stock)
            n++;
        sk_test_resp_free(&r);
    }
    return n;
}

/* With Redis unreachable a reservation is refused within 1.5 s: 503 overloaded
 * (or 500 internal). */
static void reserve_expect_fast_refusal(uint64_t user_id, json_int_t activity_id, json_int_t item_id)
{
    char tok[SK_JWT_MAX_LEN];
    struct sk_test_resp r;
    token(user_id, tok, sizeof(tok));
    int64_t t0 = sk_mono_ms();
    long st = reserve(tok, activity_id, item_id, &r);
    int64_t took = sk_mono_ms() - t0;
    int ok = (st == 503 && strcmp(sk_test_err_code(&r), "overloaded") == 0) ||
             (st == 500 && strcmp(sk_test_err_code(&r), "internal") == 0);
    char got[512];
    snprintf(got, sizeof(got), "%s", r.body ? r.body : "(no body)");
    sk_test_resp_free(&r);
    ck_assert_msg(took <= 1500, "a reservation with Redis unreachable took %lld ms", (long long)took);
    ck_assert_msg(ok, "with Redis unreachable: %ld %s", st, got);
}

START_TEST(redis_down_fails_fast_and_recovers)
{
    ck_assert_int_gt(redis_pid_, 0);
    kill(redis_pid_, SIGCONT); /* in case the test before stopped there */
    if (redis_)
        redisFree(redis_);
    redis_ = NULL;
    json_int_t item;
    json_int_t id = publish_running(50, 1, &item);
    for (int i = 0; i < 50 && readyz_count(4, 200, 1) != 4; i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(readyz_count(4, 200, 1), 4);
    redis_ = private_redis_connect();
    reserve_expect(7001, id, item, 200, "");
    struct rstate s;
    rstate_get(item, &s);
    ck_assert_msg(s.stock == 49 && s.log_n == 1, RSTATE_FMT, RSTATE_ARGS(s));
    redisFree(redis_);
    redis_ = NULL;

    private_redis_kill();
    /* each buyer is answered at once, with a clear refusal */
    for (int i = 0; i < 6; i++) {
        reserve_expect_fast_refusal(7100 + (uint64_t)i, id, item);
        sk_test_sleep_ms(100);
    }
    ck_assert_int_eq(readyz_count(4, 503, 0), 4);
    /* the catalog is in memory and keeps answering */
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/api/v1/items/%lld", (long long)item);
    ck_assert_int_eq(client("GET", path, NULL, NULL, &r), 200);
    sk_test_resp_free(&r);

    /* Down for a while longer (the reconnect back-off grows meanwhile): still
     * refused at once, still not ready. */
    sk_test_sleep_ms(2500);
    reserve_expect_fast_refusal(7150, id, item);
    ck_assert_int_eq(readyz_count(4, 503, 0), 4);

    /* Redis comes back on the same port with its data: the daemon reconnects by
     * itself and sells again */
    private_redis_start();
    int64_t t0 = sk_mono_ms();
    int ready = 0;
    while (!ready && sk_mono_ms() - t0 < 10000) {
        ready = readyz_count(4, 200, 1) == 4;
        if (!ready)
            sk_test_sleep_ms(100);
    }
    ck_assert_msg(ready, "/readyz not 200 on every worker 10 s after Redis came back");
    fprintf(stderr, "check_client_api: ready %lld ms after Redis came back\n", (long long)(sk_mono_ms() - t0));
    redis_ = private_redis_connect();
    rstate_get(item, &s);
    ck_assert_msg(s.stock == 49 && s.log_n == 1 && s.orders_n == 1, "after the restart: " RSTATE_FMT,
                  RSTATE_ARGS(s));
    reserve_expect(7001, id, item, 409, "limit_reached"); /* the unit held before the crash counts */
    reserve_expect(7200, id, item, 200, "");
    rstate_get(item, &s);
    ck_assert_msg(s.stock == 48 && s.log_n == 2 && s.buyers_n == 2, RSTATE_FMT, RSTATE_ARGS(s));

    int st = sk_test_daemon_stop(&daemon2_, SIGTERM);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        sk_test_daemon_dump_log(&daemon2_);
        ck_abort_msg("seckilld did not stop cleanly on SIGTERM (status %d)", st);
    }
}
END_TEST

/* Redis hangs (SIGSTOP) instead of dying: the command times out and the buyer is
 * refused within 1.5 s. The refused reservation must not take a unit when Redis
 * wakes up and reads the command still in its socket buffer. */
START_TEST(redis_hang_refusal_takes_nothing)
{
    ck_assert_int_gt(redis_pid_, 0);
    json_int_t item;
    json_int_t id = publish_running(30, 1, &item);
    for (int i = 0; i < 100 && readyz_count(4, 200, 1) != 4; i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(readyz_count(4, 200, 1), 4);
    redis_ = private_redis_connect();
    struct rstate before;
    rstate_get(item, &before);
    ck_assert_int_eq(before.stock, 30);
    redisFree(redis_);
    redis_ = NULL;

    ck_assert_int_eq(kill(redis_pid_, SIGSTOP), 0);
    reserve_expect_fast_refusal(8001, id, item);
    ck_assert_int_eq(kill(redis_pid_, SIGCONT), 0);

    int64_t t0 = sk_mono_ms();
    while (readyz_count(4, 200, 1) != 4 && sk_mono_ms() - t0 < 10000)
        sk_test_sleep_ms(100);
    sk_test_sleep_ms(300);
    redis_ = private_redis_connect();
    rstate_unchanged(item, &before, "a reservation answered 503 while Redis hung");
    /* and the buyer who was refused may try again */
    reserve_expect(8001, id, item, 200, "");
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("client_api");
    TCase *tc = tcase_create("daemon");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, catalog_lists_published);
    tcase_add_test(tc, auth_refused);
    tcase_add_test(tc, reserve_happy_path);
    tcase_add_test(tc, reserve_window);
    tcase_add_test(tc, per_user_limit);
    tcase_add_test(tc, concurrent_buyers_sell_out_exactly);
    tcase_add_test(tc, bad_input_changes_nothing);
    tcase_add_test(tc, graceful_stop);
    suite_add_tcase(s, tc);

    TCase *rd = tcase_create("redis_down");
    tcase_add_unchecked_fixture(rd, setup_redis_down, teardown_redis_down);
    tcase_set_timeout(rd, 120);
    tcase_add_test(rd, redis_hang_refusal_takes_nothing);
    tcase_add_test(rd, redis_down_fails_fast_and_recovers);
    suite_add_tcase(s, rd);

    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
