/*
 * The scheduler end to end: the real seckilld publishes scheduled activities to
 * Redis at publish_at, moves them to running and ended at their times, never
 * publishes twice (stock unchanged across restarts and crashes), and leaves
 * cancelled activities alone.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <mysql.h>

#include "core/timeutil.h"
#include "support.h"

#define DB_NAME "sktest_sched"
#define REDIS_DB 6

static struct sk_test_daemon daemon_;
static redisContext *redis_;

static void setup(void)
{
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 0);
    redis_ = sk_test_redis(REDIS_DB);
}

static void teardown(void)
{
    if (redis_)
        redisFree(redis_);
    redis_ = NULL;
    sk_test_daemon_stop(&daemon_, SIGTERM);
}

static long admin(const char *method, const char *path, const char *body, struct sk_test_resp *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", daemon_.admin_url, path);
    return sk_test_http(method, url, SK_TEST_ADMIN_TOKEN, body, NULL, r);
}

static void iso(int64_t ms, char *buf)
{
    sk_time_format(ms, buf);
}

/* Create an activity whose times are offsets from now (ms); returns its id and
 * the first item's id. */
static json_int_t create_at(int64_t starts_in, int64_t ends_in, int64_t stock, json_int_t *item_id)
{
    char s[SK_TIME_TEXT_LEN], e[SK_TIME_TEXT_LEN], body[1024];
    int64_t now = sk_now_ms();
    iso(now + starts_in, s);
    iso(now + ends_in, e);
    snprintf(body, sizeof(body),
             "{\"name\":\"sched\",\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"items\":[{\"sku\":\"A\",\"title\":\"A\","
             "\"price_cents\":100,\"seckill_price_cents\":50,\"stock\":%lld,\"per_user_limit\":1}]}",
             s, e, (long long)stock);
    struct sk_test_resp r;
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", body, &r), 201);
    json_int_t id = json_integer_value(json_object_get(r.json, "id"));
    *item_id = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    sk_test_resp_free(&r);
    return id;
}

static void publish_at(json_int_t id, int64_t at_in)
{
    char at[SK_TIME_TEXT_LEN], body[128], path[128];
    iso(sk_now_ms() + at_in, at);
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", at);
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)id);
    struct sk_test_resp r;
    ck_assert_int_eq(admin("POST", path, body, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "scheduled");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "publish_at")), at);
    sk_test_resp_free(&r);
}

/* The activity's state as the admin API shows it. */
static char *state_of(json_int_t id)
{
    static char state[32];
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld", (long long)id);
    ck_assert_int_eq(admin("GET", path, NULL, &r), 200);
    snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(r.json, "state")));
    sk_test_resp_free(&r);
    return state;
}

/* Wait up to ms for the state; fail with the last state seen. */
static void wait_state(json_int_t id, const char *want, int ms)
{
    const char *st = "";
    for (int waited = 0; waited <= ms; waited += 50) {
        st = state_of(id);
        if (strcmp(st, want) == 0)
            return;
        sk_test_sleep_ms(50);
    }
    ck_abort_msg("activity %lld is %s, expected %s", (long long)id, st, want);
}

/* Remaining stock of an item in Redis, -1 when it is not there. */
static long long redis_stock(json_int_t item_id)
{
    redisReply *r = redisCommand(redis_, "GET sk:{item:%lld}:stock", (long long)item_id);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static void redis_take(json_int_t item_id, int units)
{
    redisReply *r = redisCommand(redis_, "DECRBY sk:{item:%lld}:stock %d", (long long)item_id, units);
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
}

/* Put an activity back to `scheduled` in MariaDB behind the daemon's back, as if it
 * had crashed between publishing to Redis and recording it. */
static void force_scheduled(json_int_t id)
{
    MYSQL *m = mysql_init(NULL);
    ck_assert_ptr_nonnull(mysql_real_connect(m, sk_test_mysql_host(), sk_test_mysql_user(), sk_test_mysql_password(),
                                             DB_NAME, (unsigned)sk_test_mysql_port(), NULL, 0));
    char sql[200];
    snprintf(sql, sizeof(sql), "UPDATE activities SET state = 'scheduled' WHERE id = %lld", (long long)id);
    ck_assert_msg(mysql_query(m, sql) == 0, "%s", mysql_error(m));
    ck_assert_int_eq(mysql_affected_rows(m), 1);
    mysql_close(m);
}

START_TEST(publishes_at_publish_at)
{
    json_int_t item;
    json_int_t id = create_at(60000, 120000, 30, &item);
    publish_at(id, 1500);
    sk_test_sleep_ms(500);
    ck_assert_str_eq(state_of(id), "scheduled");
    ck_assert_int_eq(redis_stock(item), -1); /* not before its time */
    wait_state(id, "published", 4000);
    ck_assert_int_eq(redis_stock(item), 30);
}
END_TEST

START_TEST(runs_and_ends_on_time)
{
    json_int_t item;
    json_int_t id = create_at(1500, 3000, 5, &item);
    publish_at(id, 0);
    wait_state(id, "published", 2000);
    wait_state(id, "running", 3000);
    ck_assert_int_eq(redis_stock(item), 5);
    wait_state(id, "ended", 3000);
}
END_TEST

/* Restart, and a crash between publishing and recording it: the stock that is
 * already selling is never reset. */
START_TEST(republish_never_resets_stock)
{
    json_int_t item;
    json_int_t id = create_at(60000, 120000, 100, &item);
    publish_at(id, 0);
    wait_state(id, "published", 3000);
    redis_take(item, 7); /* buyers took 7 units */
    ck_assert_int_eq(redis_stock(item), 93);

    ck_assert_int_eq(sk_test_daemon_stop(&daemon_, SIGKILL) != -1, 1);
    force_scheduled(id);
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 1);
    wait_state(id, "published", 4000);
    ck_assert_int_eq(redis_stock(item), 93);

    /* and a graceful restart changes nothing either */
    int st = sk_test_daemon_stop(&daemon_, SIGTERM);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 1);
    sk_test_sleep_ms(500);
    ck_assert_str_eq(state_of(id), "published");
    ck_assert_int_eq(redis_stock(item), 93);
}
END_TEST

/* An activity scheduled before a crash is published by the next run. */
START_TEST(survives_kill_before_publish)
{
    json_int_t item;
    json_int_t id = create_at(60000, 120000, 11, &item);
    publish_at(id, 1500);
    sk_test_daemon_stop(&daemon_, SIGKILL);
    sk_test_sleep_ms(2000);
    ck_assert_int_eq(redis_stock(item), -1);
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 1);
    wait_state(id, "published", 4000);
    ck_assert_int_eq(redis_stock(item), 11);
}
END_TEST

START_TEST(cancelled_is_never_published)
{
    json_int_t item;
    json_int_t id = create_at(60000, 120000, 9, &item);
    publish_at(id, 1000);
    char path[128];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/cancel", (long long)id);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "cancelled");
    sk_test_resp_free(&r);
    sk_test_sleep_ms(2000);
    ck_assert_str_eq(state_of(id), "cancelled");
    ck_assert_int_eq(redis_stock(item), -1);
}
END_TEST

/* Scheduled but never published before its end: it ends without touching Redis. */
START_TEST(expired_schedule_ends)
{
    json_int_t item;
    json_int_t id = create_at(500, 1000, 3, &item);
    publish_at(id, 200);
    sk_test_daemon_stop(&daemon_, SIGKILL);
    sk_test_sleep_ms(1500);
    sk_test_daemon_start(&daemon_, DB_NAME, REDIS_DB, NULL, 1);
    wait_state(id, "ended", 3000);
    ck_assert_int_eq(redis_stock(item), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("daemon");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, publishes_at_publish_at);
    tcase_add_test(tc, runs_and_ends_on_time);
    tcase_add_test(tc, republish_never_resets_stock);
    tcase_add_test(tc, survives_kill_before_publish);
    tcase_add_test(tc, cancelled_is_never_published);
    tcase_add_test(tc, expired_schedule_ends);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
