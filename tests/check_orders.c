/*
 * The order pipeline end to end: the real seckilld with the redis stock plugin and a
 * queue plugin writes every reservation as exactly one MariaDB order (SPEC §2 step 4,
 * §3), through bursts, duplicates, malformed records, a daemon killed with SIGKILL
 * mid-burst, and closes unpaid orders on time, giving their units back.
 *
 * The queue plugin is redis_streams unless SK_TEST_QUEUE=kafka_rest (then the
 * suite starts the Kafka REST Proxy emulator itself).
 */
#include <check.h>
#include <curl/curl.h>
#include <mysql.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/auth/jwt.h"
#include "core/timeutil.h"
#include "support.h"

#define DB_NAME "sktest_orders"
#define REDIS_DB 12

static struct sk_test_daemon daemon_;
static char plugins_yaml[1024];
static pid_t kafka_pid;
static char kafka_dir[128];

/* --- helpers ------------------------------------------------------------------- */

static long admin(const char *method, const char *path, const char *body, struct sk_test_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", daemon_.admin_url, path);
    return sk_test_http(method, url, SK_TEST_ADMIN_TOKEN, body, NULL, r);
}

static void token(uint64_t user, char *out, size_t len)
{
    ck_assert_int_eq(sk_jwt_mint(SK_TEST_JWT_SECRET, strlen(SK_TEST_JWT_SECRET), user, sk_now_ms() / 1000 + 3600, out,
                                 len),
                     0);
}

/* Create and publish an activity that is on sale now; wait until buyers see it. */
static void on_sale(int64_t stock, int limit, json_int_t *activity, json_int_t *item)
{
    char s[SK_TIME_TEXT_LEN], e[SK_TIME_TEXT_LEN], body[1024], path[160];
    struct sk_test_resp r;
    int64_t now = sk_now_ms();
    sk_time_format(now - 1000, s);
    sk_time_format(now + 3600 * 1000, e);
    snprintf(body, sizeof(body),
             "{\"name\":\"orders\",\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"items\":[{\"sku\":\"S\",\"title\":\"T\","
             "\"price_cents\":1000,\"seckill_price_cents\":990,\"stock\":%lld,\"per_user_limit\":%d}]}",
             s, e, (long long)stock, limit);
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", body, &r), 201);
    *activity = json_integer_value(json_object_get(r.json, "id"));
    *item = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    sk_test_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)*activity);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    sk_test_resp_free(&r);
    snprintf(path, sizeof(path), "%s/api/v1/items/%lld", daemon_.client_url, (long long)*item);
    for (int i = 0; i < 100; i++) {
        long st = sk_test_http("GET", path, NULL, NULL, NULL, &r);
        sk_test_resp_free(&r);
        if (st == 200)
            return;
        sk_test_sleep_ms(100);
    }
    ck_abort_msg("item %lld never went on sale", (long long)*item);
}

/* One reservation; returns the status and copies the order number. */
static long reserve(uint64_t user, json_int_t activity, json_int_t item, char *order_no, size_t len)
{
    char tok[512], url[160], body[128];
    struct sk_test_resp r;
    token(user, tok, sizeof(tok));
    snprintf(url, sizeof(url), "%s/api/v1/seckill", daemon_.client_url);
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)activity, (long long)item);
    long st = sk_test_http("POST", url, tok, body, NULL, &r);
    if (st == 200 && order_no)
        snprintf(order_no, len, "%s", json_string_value(json_object_get(r.json, "order_no")));
    sk_test_resp_free(&r);
    return st;
}

struct burst {
    int n;
    char (*order_no)[64];   /* of the answers 200 */
    int reserved, refused, failed;
};

struct xfer {
    char body[4096];
    size_t len;
    struct curl_slist *hdrs;
};

static size_t xfer_write(char *p, size_t size, size_t n, void *u)
{
    struct xfer *x = u;
    size_t k = size * n;
    if (x->len + k < sizeof(x->body)) {
        memcpy(x->body + x->len, p, k);
        x->len += k;
        x->body[x->len] = '\0';
    }
    return k;
}

/* n buyers (users first..first+n-1) at once, 100 transfers in parallel. */
static void burst(struct burst *b, uint64_t first, int n, json_int_t activity, json_int_t item)
{
    CURLM *m = curl_multi_init();
    CURL **h = calloc((size_t)n, sizeof(*h));
    struct xfer *x = calloc((size_t)n, sizeof(*x));
    char url[160], body[128];
    memset(b, 0, sizeof(*b));
    b->n = n;
    b->order_no = calloc((size_t)n, sizeof(*b->order_no));
    ck_assert(m && h && x && b->order_no);
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 100L);
    snprintf(url, sizeof(url), "%s/api/v1/seckill", daemon_.client_url);
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)activity, (long long)item);
    for (int i = 0; i < n; i++) {
        char tok[512], auth[600];
        token(first + (uint64_t)i, tok, sizeof(tok));
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
        x[i].hdrs = curl_slist_append(NULL, auth);
        x[i].hdrs = curl_slist_append(x[i].hdrs, "Content-Type: application/json");
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_COPYPOSTFIELDS, body);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, x[i].hdrs);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, xfer_write);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &x[i]);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(h[i], CURLOPT_PRIVATE, (char *)&x[i]);
        curl_multi_add_handle(m, h[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < n; i++) {
        long st = 0;
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &st);
        if (st == 200) {
            json_t *j = json_loads(x[i].body, 0, NULL);
            snprintf(b->order_no[b->reserved++], 64, "%s", json_string_value(json_object_get(j, "order_no")));
            json_decref(j);
        } else if (st == 409) {
            b->refused++;
        } else {
            b->failed++;
        }
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        curl_slist_free_all(x[i].hdrs);
    }
    curl_multi_cleanup(m);
    free(h);
    free(x);
}

static MYSQL *db(void)
{
    MYSQL *m = mysql_init(NULL);
    ck_assert_ptr_nonnull(mysql_real_connect(m, sk_test_mysql_host(), sk_test_mysql_user(), sk_test_mysql_password(),
                                             DB_NAME, (unsigned)sk_test_mysql_port(), NULL, 0));
    return m;
}

static long long scalar(const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    MYSQL *m = db();
    ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
    MYSQL_RES *res = mysql_store_result(m);
    MYSQL_ROW row = mysql_fetch_row(res);
    long long v = row && row[0] ? atoll(row[0]) : -1;
    mysql_free_result(res);
    mysql_close(m);
    return v;
}

/* Wait until the item has `want` orders in MariaDB (or fail with what it has). */
static void wait_orders(json_int_t item, long long want, int ms)
{
    long long have = -1;
    for (int waited = 0; waited <= ms; waited += 100) {
        have = scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld", (long long)item);
        if (have == want)
            return;
        sk_test_sleep_ms(100);
    }
    sk_test_daemon_dump_log(&daemon_);
    ck_abort_msg("item %lld has %lld orders in MariaDB, expected %lld", (long long)item, have, want);
}

static long long redis_int(redisContext *c, const char *fmt, json_int_t item)
{
    redisReply *r = redisCommand(c, fmt, (long long)item);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

/* --- fixture ------------------------------------------------------------------- */

static void start_kafka_emulator(int port)
{
    snprintf(kafka_dir, sizeof(kafka_dir), "/tmp/sktest-kafka-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(kafka_dir));
    char script[512], portbuf[16];
    snprintf(script, sizeof(script), "%s/scripts/kafka-rest-emulator.py", SK_TEST_SRCDIR);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    kafka_pid = fork();
    if (kafka_pid == 0) {
        /* a killed daemon's consumer instance gives its partitions back after 3 s, as
         * Kafka does after a consumer's session timeout */
        execl("/usr/bin/python3", "python3", script, "--port", portbuf, "--data", kafka_dir, "--instance-timeout-ms",
              "3000", (char *)NULL);
        _exit(127);
    }
    sk_test_sleep_ms(1000);
}

static void setup(void)
{
    const char *q = getenv("SK_TEST_QUEUE");
    if (q && strcmp(q, "kafka_rest") == 0) {
        int port = sk_test_free_port();
        start_kafka_emulator(port);
        snprintf(plugins_yaml, sizeof(plugins_yaml),
                 "  queue:\n    name: kafka_rest\n    config:\n      url: http://127.0.0.1:%d\n"
                 "      topic: sktest-orders\n      host: %s\n      port: %d\n      db: %d\n"
                 "      claim_idle_ms: 1000\n",
                 port, sk_test_redis_host(), sk_test_redis_port(), REDIS_DB);
    } else {
        snprintf(plugins_yaml, sizeof(plugins_yaml),
                 "  queue:\n    name: redis_streams\n    config:\n      host: %s\n      port: %d\n      db: %d\n"
                 "      claim_idle_ms: 1000\n",
                 sk_test_redis_host(), sk_test_redis_port(), REDIS_DB);
    }
    daemon_.plugins_yaml = plugins_yaml;
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, "order_timeout: 3s\n", 0);
}

static void teardown(void)
{
    sk_test_daemon_stop(&daemon_, SIGTERM);
    if (kafka_pid > 0) {
        kill(kafka_pid, SIGTERM);
        waitpid(kafka_pid, NULL, 0);
        kafka_pid = 0;
    }
}

/* --- cases --------------------------------------------------------------------- */

/* 1500 buyers for 400 units: exactly the 400 answered reservations become orders,
 * once each, with the buyer, the price and seq 1; the buyer sees them `created`. */
START_TEST(burst_becomes_orders)
{
    json_int_t activity, item;
    struct burst b;
    on_sale(400, 1, &activity, &item);
    burst(&b, 100000, 1500, activity, item);
    ck_assert_int_eq(b.reserved, 400);
    ck_assert_int_eq(b.failed, 0);
    wait_orders(item, 400, 15000);
    ck_assert_int_eq(scalar("SELECT COUNT(DISTINCT order_no) FROM orders WHERE item_id = %lld", (long long)item),
                     400);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'created' AND seq = 1 "
                            "AND amount_cents = 990 AND activity_id = %lld",
                            (long long)item, (long long)activity),
                     400);
    /* every answered order number is there */
    for (int i = 0; i < b.reserved; i += 37)
        ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s'", b.order_no[i]), 1);
    /* the buyer reads it back as created (user 100000 + ? : find the owner in MariaDB) */
    long long user = scalar("SELECT user_id FROM orders WHERE order_no = '%s'", b.order_no[0]);
    char tok[512], url[200];
    struct sk_test_resp r;
    token((uint64_t)user, tok, sizeof(tok));
    snprintf(url, sizeof(url), "%s/api/v1/orders/%s", daemon_.client_url, b.order_no[0]);
    ck_assert_int_eq(sk_test_http("GET", url, tok, NULL, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "created");
    sk_test_resp_free(&r);
    free(b.order_no);
}
END_TEST

/* A reservation delivered twice (the same log entry appended again) and a
 * malformed record: no second order, the bad one parked, the pipeline goes on. */
START_TEST(duplicates_and_malformed_records)
{
    json_int_t activity, item;
    char no[64];
    on_sale(10, 1, &activity, &item);
    ck_assert_int_eq(reserve(200001, activity, item, no, sizeof(no)), 200);
    wait_orders(item, 1, 10000);

    redisContext *c = redisConnect(sk_test_redis_host(), sk_test_redis_port());
    ck_assert(c && !c->err);
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    freeReplyObject(r);
    long long parked_before = scalar("SELECT COUNT(*) FROM parked_records");
    /* the same reservation once more, as a redelivery would bring it */
    r = redisCommand(c, "XRANGE sk:{item:%lld}:log - +", (long long)item);
    ck_assert(r && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    long long reserved_at = scalar("SELECT CAST(ROUND(UNIX_TIMESTAMP(reserved_at) * 1000) AS SIGNED) FROM orders "
                                    "WHERE order_no = '%s'",
                                    no);
    r = redisCommand(c,
                     "XADD sk:{item:%lld}:log * order_no %s user_id 200001 activity_id %lld item_id %lld seq 1 "
                     "price_cents 990 reserved_at_ms %lld expires_at_ms %lld",
                     (long long)item, no, (long long)activity, (long long)item, reserved_at, reserved_at + 3000);
    ck_assert(r && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = redisCommand(c, "XADD sk:{item:%lld}:log * order_no nonsense user_id abc", (long long)item);
    freeReplyObject(r);
    redisFree(c);

    /* a new reservation after the junk still becomes an order */
    ck_assert_int_eq(reserve(200002, activity, item, no, sizeof(no)), 200);
    wait_orders(item, 2, 10000);
    for (int i = 0; i < 100 && scalar("SELECT COUNT(*) FROM parked_records") == parked_before; i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM parked_records"), parked_before + 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld", (long long)item), 2);
}
END_TEST

/* Unpaid orders close after order_timeout (3 s here) and give their unit back
 * exactly once; the sold-out flag clears, so the next buyer gets the unit. */
START_TEST(timeout_returns_the_unit)
{
    json_int_t activity, item;
    char no[64];
    on_sale(1, 1, &activity, &item);
    ck_assert_int_eq(reserve(300001, activity, item, no, sizeof(no)), 200);
    ck_assert_int_eq(reserve(300002, activity, item, NULL, 0), 409); /* sold out */
    wait_orders(item, 1, 10000);
    long long status_closed = 0;
    for (int i = 0; i < 100 && !status_closed; i++) {
        status_closed = scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'closed' AND "
                               "unit_returned = 1",
                               no);
        if (!status_closed)
            sk_test_sleep_ms(100);
    }
    ck_assert_msg(status_closed, "order %s was not closed with its unit returned", no);
    /* the next buyer gets the returned unit (the flag clears within a scheduler tick) */
    long st = 0;
    for (int i = 0; i < 30 && st != 200; i++) {
        st = reserve(300002, activity, item, NULL, 0);
        if (st != 200)
            sk_test_sleep_ms(100);
    }
    ck_assert_int_eq(st, 200);
}
END_TEST

/* An operator closes an order by hand through the admin API. */
START_TEST(admin_lists_and_closes)
{
    json_int_t activity, item;
    char no[64], path[200];
    struct sk_test_resp r;
    on_sale(5, 1, &activity, &item);
    ck_assert_int_eq(reserve(400001, activity, item, no, sizeof(no)), 200);
    wait_orders(item, 1, 10000);
    snprintf(path, sizeof(path), "/admin/v1/orders?status=created&activity_id=%lld", (long long)activity);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 200);
    json_t *o = json_array_get(json_object_get(r.json, "orders"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "order_no")), no);
    ck_assert(json_is_integer(json_object_get(o, "expires_in_s")));
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("GET", "/admin/v1/orders?status=bogus", NULL, &r), 400);
    sk_test_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/v1/orders/%s/close", no);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "closed");
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 409);
    sk_test_resp_free(&r);
    ck_assert_int_eq(admin("POST", "/admin/v1/orders/nonsense/close", NULL, &r), 404);
    sk_test_resp_free(&r);
}
END_TEST

/* SIGKILL in the middle of a burst, then a restart: every reservation Redis took
 * (all answered ones among them) is exactly one order; none is lost or doubled. */
START_TEST(kill9_mid_burst)
{
    json_int_t activity, item;
    struct burst b;
    on_sale(5000, 1, &activity, &item);
    pid_t killer = fork();
    if (killer == 0) {
        usleep(300 * 1000);
        kill(daemon_.pid, SIGKILL);
        _exit(0);
    }
    burst(&b, 500000, 1500, activity, item);
    waitpid(killer, NULL, 0);
    int st;
    waitpid(daemon_.pid, &st, 0);
    daemon_.pid = 0;
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, "order_timeout: 3s\n", 1);

    redisContext *c = redisConnect(sk_test_redis_host(), sk_test_redis_port());
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    freeReplyObject(r);
    long long left = redis_int(c, "GET sk:{item:%lld}:stock", item);
    redisFree(c);
    long long taken = 5000 - left;
    ck_assert_int_ge(taken, b.reserved);
    wait_orders(item, taken, 20000);
    ck_assert_int_eq(scalar("SELECT COUNT(DISTINCT order_no) FROM orders WHERE item_id = %lld", (long long)item),
                     taken);
    for (int i = 0; i < b.reserved; i++)
        ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s'", b.order_no[i]), 1);
    free(b.order_no);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("orders");
    TCase *tc = tcase_create("pipeline");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, burst_becomes_orders);
    tcase_add_test(tc, duplicates_and_malformed_records);
    tcase_add_test(tc, timeout_returns_the_unit);
    tcase_add_test(tc, admin_lists_and_closes);
    tcase_add_test(tc, kill9_mid_burst);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
