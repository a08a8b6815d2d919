/*
 * The admin API end to end: the real seckilld against the private Redis and
 * MariaDB. One daemon serves the whole suite (started in the fixture); each test
 * makes its own activities.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define DB_NAME "sktest_admin"
#define REDIS_DB 5

static struct sk_test_daemon daemon_;

static void start_daemon(void)
{
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 0);
}

static void stop_daemon(void)
{
    int st = sk_test_daemon_stop(&daemon_, SIGTERM);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        sk_test_daemon_dump_log(&daemon_);
        ck_abort_msg("seckilld did not stop cleanly on SIGTERM (status %d)", st);
    }
}

/* admin("POST", "/admin/v1/activities", body, &r) with the admin token. */
static long admin(const char *method, const char *path, const char *body, struct sk_test_resp *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", daemon_.admin_url, path);
    return sk_test_http(method, url, SK_TEST_ADMIN_TOKEN, body, NULL, r);
}

/* A valid activity body starting in an hour, with two items. */
static const char *valid_body(void)
{
    return "{\"name\":\"Double 11\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T10:30:00Z\","
           "\"items\":[{\"sku\":\"PHONE-1\",\"title\":\"秒杀手机\",\"price_cents\":399900,"
           "\"seckill_price_cents\":99900,\"stock\":100,\"per_user_limit\":1},"
           "{\"sku\":\"CASE-1\",\"title\":\"Phone case\",\"price_cents\":2000,\"seckill_price_cents\":100,"
           "\"stock\":500}]}";
}

static json_int_t create(const char *body)
{
    struct sk_test_resp r;
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", body, &r), 201);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    ck_assert_int_gt(id, 0);
    sk_test_resp_free(&r);
    return id;
}

static size_t activity_count(void)
{
    struct sk_test_resp r;
    ck_assert_int_eq(admin("GET", "/admin/v1/activities", NULL, &r), 200);
    size_t n = json_array_size(json_object_get(r.json, "activities"));
    sk_test_resp_free(&r);
    return n;
}

START_TEST(auth_required)
{
    struct sk_test_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/admin/v1/activities", daemon_.admin_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 401);
    ck_assert_str_eq(sk_test_err_code(&r), "unauthorized");
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("GET", url, "wrong-token-wrong-token", NULL, NULL, &r), 401);
    ck_assert_str_eq(sk_test_err_code(&r), "unauthorized");
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("POST", url, "x", valid_body(), NULL, &r), 401);
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("GET", url, SK_TEST_ADMIN_TOKEN, NULL, NULL, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(create_and_read)
{
    struct sk_test_resp r;
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", valid_body(), &r), 201);
    json_t *a = r.json;
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(json_string_value(json_object_get(a, "state")), "draft");
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "Double 11");
    ck_assert_str_eq(json_string_value(json_object_get(a, "starts_at")), "2099-01-01T10:00:00Z");
    json_t *items = json_object_get(a, "items");
    ck_assert_int_eq(json_array_size(items), 2);
    json_t *it = json_array_get(items, 0);
    ck_assert_int_gt(json_integer_value(json_object_get(it, "id")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(it, "title")), "秒杀手机");
    ck_assert_int_eq(json_integer_value(json_object_get(it, "seckill_price_cents")), 99900);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 1), "per_user_limit")), 1);
    json_int_t id = json_integer_value(json_object_get(a, "id"));
    sk_test_resp_free(&r);

    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld", (long long)id);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), id);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "items")), 2);
    sk_test_resp_free(&r);

    ck_assert_int_eq(admin("GET", "/admin/v1/activities/999999999", NULL, &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", "/admin/v1/activities/abc", NULL, &r), 404);
    sk_test_resp_free(&r);
}
END_TEST

/* Every validation error answers 400 with the field named, and creates nothing. */
START_TEST(create_validation)
{
    static const struct {
        const char *body;
        const char *field; /* must appear in the message */
    } cases[] = {
        {"{}", "name"},
        {"[]", "object"},
        {"{\"name\":\"x\"", "JSON"},
        {"{\"name\":\"\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "name"},
        {"{\"name\":7,\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "name"},
        {"{\"name\":\"x\",\"starts_at\":\"tomorrow\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "starts_at"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T12:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "ends_at"},
        {"{\"name\":\"x\",\"publish_at\":\"2099-01-01T12:00:00Z\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T13:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "publish_at"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[]}", "items"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\"}", "items"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":0}]}", "items[0].stock"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":-1,\"seckill_price_cents\":0,\"stock\":1}]}", "items[0].price_cents"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1,\"per_user_limit\":0}]}", "items[0].per_user_limit"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":2,\"stock\":1}]}", "seckill_price_cents"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":\"1\",\"seckill_price_cents\":1,\"stock\":1}]}", "items[0].price_cents"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1},{\"sku\":\"a\",\"title\":\"B\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "items[1].sku"},
        {"{\"name\":\"x\",\"colour\":\"red\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1}]}", "colour"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1,\"weight\":3}]}", "items[0].weight"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[7]}", "items[0]"},
        {"{\"name\":\"x\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"ends_at\":\"2099-01-01T11:00:00Z\",\"items\":[{\"sku\":\"a\",\"title\":\"A\",\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":1.5}]}", "items[0].stock"},
    };
    size_t before = activity_count();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sk_test_resp r;
        long st = admin("POST", "/admin/v1/activities", cases[i].body, &r);
        ck_assert_msg(st == 400, "case %zu: status %ld body %s", i, st, r.body);
        ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
        const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        ck_assert_msg(msg && strstr(msg, cases[i].field), "case %zu: message \"%s\" does not name %s", i,
                      msg ? msg : "(none)", cases[i].field);
        sk_test_resp_free(&r);
    }
    ck_assert_int_eq(activity_count(), before);
}
END_TEST

START_TEST(list_with_filter)
{
    create(valid_body());
    struct sk_test_resp r;
    ck_assert_int_eq(admin("GET", "/admin/v1/activities?state=draft", NULL, &r), 200);
    json_t *arr = json_object_get(r.json, "activities");
    ck_assert_int_ge(json_array_size(arr), 1);
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) ck_assert_str_eq(json_string_value(json_object_get(a, "state")), "draft");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", "/admin/v1/activities?state=ended", NULL, &r), 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "activities")), 0);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", "/admin/v1/activities?state=bogus", NULL, &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(update_and_delete_draft)
{
    json_int_t id = create(valid_body());
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld", (long long)id);

    /* change the name and replace the items by one new item */
    ck_assert_int_eq(admin("PUT", path,
                           "{\"name\":\"Renamed\",\"items\":[{\"sku\":\"NEW\",\"title\":\"新品\",\"price_cents\":10,"
                           "\"seckill_price_cents\":5,\"stock\":7,\"per_user_limit\":2}]}",
                           &r),
                     200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "name")), "Renamed");
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "items")), 1);
    json_int_t item_id = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    sk_test_resp_free(&r);

    /* update that one item by id, keep the rest */
    char body[256];
    snprintf(body, sizeof(body), "{\"items\":[{\"id\":%lld,\"stock\":9}]}", (long long)item_id);
    ck_assert_int_eq(admin("PUT", path, body, &r), 200);
    json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(it, "stock")), 9);
    ck_assert_str_eq(json_string_value(json_object_get(it, "sku")), "NEW");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "name")), "Renamed");
    sk_test_resp_free(&r);

    /* bad update: nothing changes */
    ck_assert_int_eq(admin("PUT", path, "{\"ends_at\":\"1999-01-01T00:00:00Z\"}", &r), 400);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("PUT", path, "{\"items\":[{\"id\":1234567,\"stock\":3}]}", &r), 400);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "ends_at")), "2099-01-01T10:30:00Z");
    sk_test_resp_free(&r);

    ck_assert_int_eq(admin("DELETE", path, NULL, &r), 204);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 404);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("DELETE", path, NULL, &r), 404);
    sk_test_resp_free(&r);
}
END_TEST

/* Publish now: the scheduler puts the stock in Redis; after that the activity
 * can no longer be edited or deleted, and cancelling closes its items. */
START_TEST(publish_stock_cancel)
{
    json_int_t id = create("{\"name\":\"Now\",\"starts_at\":\"2099-01-01T10:00:00Z\","
                           "\"ends_at\":\"2099-01-01T10:30:00Z\",\"items\":[{\"sku\":\"S\",\"title\":\"T\","
                           "\"price_cents\":100,\"seckill_price_cents\":10,\"stock\":42}]}");
    char path[128], stock_path[160];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)id);
    snprintf(stock_path, sizeof(stock_path), "/admin/v1/activities/%lld/stock", (long long)id);

    ck_assert_int_eq(admin("GET", stock_path, NULL, &r), 200);
    json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
    ck_assert(json_is_false(json_object_get(it, "published")));
    ck_assert_int_eq(json_integer_value(json_object_get(it, "remaining")), 42);
    sk_test_resp_free(&r);

    ck_assert_int_eq(admin("POST", path, "{\"at\":\"x\"}", &r), 400);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", path, "{\"when\":null}", &r), 400);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", path, "{\"at\":\"2099-01-01T10:00:01Z\"}", &r), 400); /* after starts_at */
    sk_test_resp_free(&r);

    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    const char *state = json_string_value(json_object_get(r.json, "state"));
    ck_assert_msg(strcmp(state, "scheduled") == 0 || strcmp(state, "published") == 0, "state %s", state);
    sk_test_resp_free(&r);

    /* the scheduler publishes within a few ticks */
    char get_path[128];
    snprintf(get_path, sizeof(get_path), "/admin/v1/activities/%lld", (long long)id);
    int published = 0;
    for (int i = 0; i < 50 && !published; i++) {
        ck_assert_int_eq(admin("GET", get_path, NULL, &r), 200);
        published = strcmp(json_string_value(json_object_get(r.json, "state")), "published") == 0;
        sk_test_resp_free(&r);
        if (!published)
            sk_test_sleep_ms(100);
    }
    ck_assert_msg(published, "activity was not published within 5 s");

    ck_assert_int_eq(admin("GET", stock_path, NULL, &r), 200);
    it = json_array_get(json_object_get(r.json, "items"), 0);
    ck_assert(json_is_true(json_object_get(it, "published")));
    ck_assert_int_eq(json_integer_value(json_object_get(it, "initial")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(it, "remaining")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(it, "reserved")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(it, "paid")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(it, "sale_state")), "open");
    json_int_t item_id = json_integer_value(json_object_get(it, "item_id"));
    sk_test_resp_free(&r);

    /* the stock is really in Redis */
    redisContext *rc = redisConnect(sk_test_redis_host(), sk_test_redis_port());
    ck_assert(rc && !rc->err);
    redisReply *rep = redisCommand(rc, "SELECT %d", REDIS_DB);
    freeReplyObject(rep);
    rep = redisCommand(rc, "GET sk:{item:%lld}:stock", (long long)item_id);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(rep->str, "42");
    freeReplyObject(rep);
    redisFree(rc);

    /* no more edits */
    ck_assert_int_eq(admin("PUT", get_path, "{\"name\":\"late\"}", &r), 409);
    ck_assert_str_eq(sk_test_err_code(&r), "conflict");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("DELETE", get_path, NULL, &r), 409);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 409);
    sk_test_resp_free(&r);

    /* cancel closes the item in Redis */
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/cancel", (long long)id);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "cancelled");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", stock_path, NULL, &r), 200);
    it = json_array_get(json_object_get(r.json, "items"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(it, "sale_state")), "closed");
    ck_assert_int_eq(json_integer_value(json_object_get(it, "remaining")), 42);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 409);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(http_limits_and_errors)
{
    struct sk_test_resp r;
    size_t before = activity_count();
    size_t big = 64 * 1024;
    char *huge = malloc(big + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', big);
    memcpy(huge, "{\"name\":\"", 9);
    huge[big - 2] = '"';
    huge[big - 1] = '}';
    huge[big] = '\0';
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", huge, &r), 413);
    ck_assert_str_eq(sk_test_err_code(&r), "payload_too_large");
    sk_test_resp_free(&r);
    free(huge);

    ck_assert_int_eq(admin("POST", "/admin/v1/activities", "{\"name\": tru", &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", "/admin/v1/nothing-here", NULL, &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("PATCH", "/admin/v1/activities", "{}", &r), 405);
    sk_test_resp_free(&r);

    /* still serving, nothing was created */
    ck_assert_int_eq(activity_count(), before);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", daemon_.client_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(health_ready_metrics)
{
    struct sk_test_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", daemon_.client_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    ck_assert(json_is_true(json_object_get(r.json, "ready")));
    sk_test_resp_free(&r);
    snprintf(url, sizeof(url), "%s/metrics", daemon_.client_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "seckill_http_requests_total{"));
    ck_assert_ptr_nonnull(strstr(r.body, "route=\"/readyz\""));
    ck_assert_ptr_nonnull(strstr(r.body, "seckill_http_request_duration_seconds_bucket{"));
    sk_test_resp_free(&r);
    /* the admin listener has them too */
    snprintf(url, sizeof(url), "%s/healthz", daemon_.admin_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

/* Daemon figures: shape, plugin health, and a request rate that follows traffic. */
START_TEST(stats_follow_traffic)
{
    struct sk_test_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", daemon_.client_url);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
        sk_test_resp_free(&r);
    }
    double rps = 0;
    for (int i = 0; i < 30 && rps <= 0; i++) { /* the sampler's window is about a second */
        sk_test_sleep_ms(100);
        ck_assert_int_eq(admin("GET", "/admin/v1/stats", NULL, &r), 200);
        rps = json_real_value(json_object_get(r.json, "requests_per_s"));
        if (rps <= 0)
            sk_test_resp_free(&r);
    }
    ck_assert_msg(rps > 0, "requests_per_s stayed 0 after 50 requests");
    ck_assert(json_is_true(json_object_get(r.json, "mariadb")));
    json_t *stock = json_object_get(json_object_get(r.json, "plugins"), "stock");
    ck_assert_str_eq(json_string_value(json_object_get(stock, "name")), "redis");
    ck_assert(json_is_true(json_object_get(stock, "ready")));
    json_t *by_status = json_object_get(r.json, "orders_by_status");
    ck_assert_int_eq(json_object_size(by_status), 5);
    ck_assert(json_is_integer(json_object_get(by_status, "paid")));
    ck_assert(json_is_integer(json_object_get(r.json, "uptime_s")));
    ck_assert(json_is_real(json_object_get(r.json, "latency_p99_ms")));
    sk_test_resp_free(&r);
}
END_TEST

/* A daemon stopped with SIGTERM while serving exits 0; the suite's daemon is
 * restarted for the next tests (keeping the data). */
START_TEST(graceful_restart_keeps_data)
{
    json_int_t id = create(valid_body());
    stop_daemon();
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 1);
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld", (long long)id);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

/* --- the daemon's command line and start-up refusals ----------------------------- */

/* Run seckilld with args; returns its exit status and its stderr in out. */
static int run_daemon(const char *config, const char *flag, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s -c %s %s 2>&1", getenv("SK_DAEMON"), config, flag ? flag : "");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(check_config_flag)
{
    char out[4096], path[400];
    ck_assert_int_eq(run_daemon(daemon_.config_path, "--check-config", out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "configuration OK"));
    snprintf(path, sizeof(path), "%s/bad.yaml", daemon_.dir);
    write_file(path, "workers: 2\nlisten:\n  client: nonsense\n");
    ck_assert_int_eq(run_daemon(path, "--check-config", out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "bad.yaml:3: listen.client") != NULL, "got: %s", out);
}
END_TEST

/* A plugin of another ABI version stops the start with a clear message. */
START_TEST(refuses_bad_plugin)
{
    char out[8192], path[400], cfg[4096];
    const char *test_plugins = getenv("SK_TEST_PLUGIN_DIR");
    ck_assert_ptr_nonnull(test_plugins);
    FILE *f = fopen(daemon_.config_path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(cfg, 1, sizeof(cfg) - 1, f);
    cfg[n] = '\0';
    fclose(f);
    /* same config, other ports, the stock plugin replaced by the wrong-ABI one */
    char *plugins = strstr(cfg, "plugins:");
    ck_assert_ptr_nonnull(plugins);
    snprintf(plugins, sizeof(cfg) - (size_t)(plugins - cfg),
             "plugins:\n  stock:\n    name: redis\n    path: %s/bad_abi.so\n", test_plugins);
    snprintf(path, sizeof(path), "%s/badplugin.yaml", daemon_.dir);
    write_file(path, cfg);
    int st = run_daemon(path, NULL, out, sizeof(out));
    ck_assert_int_ne(st, 0);
    ck_assert_msg(strstr(out, "bad_abi.so") && strstr(out, "ABI"), "got: %s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_api");
    TCase *tc = tcase_create("daemon");
    tcase_add_unchecked_fixture(tc, start_daemon, stop_daemon);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, auth_required);
    tcase_add_test(tc, create_and_read);
    tcase_add_test(tc, create_validation);
    tcase_add_test(tc, list_with_filter);
    tcase_add_test(tc, update_and_delete_draft);
    tcase_add_test(tc, publish_stock_cancel);
    tcase_add_test(tc, http_limits_and_errors);
    tcase_add_test(tc, health_ready_metrics);
    tcase_add_test(tc, stats_follow_traffic);
    tcase_add_test(tc, check_config_flag);
    tcase_add_test(tc, refuses_bad_plugin);
    tcase_add_test(tc, graceful_restart_keeps_data);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* one process: the daemon started by the fixture is the tests' child */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
