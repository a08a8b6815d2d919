/*
 * seckill-console without a terminal: formatting, the model fed with admin API
 * answers (good, broken and truncated ones), the activity form and its validation,
 * the key table, the settings, and the network layer against a closed port and
 * against the real daemon. The console on a terminal is tests/console_e2e.sh.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "core/timeutil.h"
#include "support.h"
#include "tui/form.h"
#include "tui/format.h"
#include "tui/keys.h"
#include "tui/model.h"
#include "tui/net.h"
#include "tui/settings.h"

#define DB_NAME  "sktest_console"
#define REDIS_DB 9

/* 2026-11-25T10:00:00Z, a fixed "now" for everything relative. */
#define NOW_MS 1795600800000LL

static struct sk_con_answer answer(long status, const char *body)
{
    struct sk_con_answer a = {.status = status, .body = body, .len = body ? strlen(body) : 0};
    return a;
}

/* Is s valid UTF-8 throughout (what a fitted string must always be)? */
static int valid_utf8(const char *s)
{
    return sk_con_utf8_printable(s, strlen(s));
}

/* --- format -------------------------------------------------------------------- */

START_TEST(money_format)
{
    char b[SK_CON_FMT_LEN];
    ck_assert_str_eq(sk_con_fmt_money(99900, b, sizeof(b)), "¥999.00");
    ck_assert_str_eq(sk_con_fmt_money(0, b, sizeof(b)), "¥0.00");
    ck_assert_str_eq(sk_con_fmt_money(5, b, sizeof(b)), "¥0.05");
    ck_assert_str_eq(sk_con_fmt_money(399950, b, sizeof(b)), "¥3999.50");
    ck_assert_str_eq(sk_con_fmt_money(-150, b, sizeof(b)), "-¥1.50");
    ck_assert_str_eq(sk_con_fmt_money(INT64_MIN, b, sizeof(b)), "-¥92233720368547758.08");
    /* a short buffer is cut, never overrun */
    char small[4] = "xxx";
    sk_con_fmt_money(99900, small, sizeof(small));
    ck_assert_uint_eq(strlen(small), 3);
}
END_TEST

START_TEST(money_parse)
{
    static const struct {
        const char *text;
        int64_t cents;
    } good[] = {{"999", 99900},  {"999.5", 99950}, {"999.50", 99950}, {"¥999.00", 99900},
                {" 1.05 ", 105}, {"0", 0},         {"￥12", 1200},    {"1000000000", 100000000000LL},
                {"0.01", 1}};
    static const char *const bad[] = {"",  "abc",           "1.234",          "-1",  "1e3",  "1,000", "1.", ".5",
                                      "¥", "1000000000.01", "99999999999999", "1 2", "12ab", NULL};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = -7;
        ck_assert_msg(sk_con_parse_money(good[i].text, &v) == SK_OK, "\"%s\" refused", good[i].text);
        ck_assert_int_eq(v, good[i].cents);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -7;
        ck_assert_msg(sk_con_parse_money(bad[i], &v) == SK_ERR, "\"%s\" accepted", bad[i] ? bad[i] : "NULL");
        ck_assert_int_eq(v, -7); /* untouched */
    }
}
END_TEST

START_TEST(durations_and_countdowns)
{
    char b[SK_CON_FMT_LEN];
    ck_assert_str_eq(sk_con_fmt_duration(0, b, sizeof(b)), "0s");
    ck_assert_str_eq(sk_con_fmt_duration(999, b, sizeof(b)), "0s");
    ck_assert_str_eq(sk_con_fmt_duration(45000, b, sizeof(b)), "45s");
    ck_assert_str_eq(sk_con_fmt_duration(123000, b, sizeof(b)), "2m03s");
    ck_assert_str_eq(sk_con_fmt_duration(3723000, b, sizeof(b)), "1h02m03s");
    ck_assert_str_eq(sk_con_fmt_duration(90061000, b, sizeof(b)), "1d01h01m");
    ck_assert_str_eq(sk_con_fmt_duration(-123000, b, sizeof(b)), "2m03s");
    ck_assert_str_eq(sk_con_fmt_countdown(NOW_MS + 3723000, NOW_MS, b, sizeof(b)), "in 1h02m03s");
    ck_assert_str_eq(sk_con_fmt_countdown(NOW_MS - 123000, NOW_MS, b, sizeof(b)), "2m03s ago");
    ck_assert_str_eq(sk_con_fmt_countdown(NOW_MS + 999, NOW_MS, b, sizeof(b)), "now");
    ck_assert_str_eq(sk_con_fmt_countdown(NOW_MS - 999, NOW_MS, b, sizeof(b)), "now");
    ck_assert_str_eq(sk_con_fmt_countdown(NOW_MS + 1000, NOW_MS, b, sizeof(b)), "in 1s");
}
END_TEST

START_TEST(times)
{
    char b[SK_CON_FMT_LEN];
    ck_assert_str_eq(sk_con_fmt_time(NOW_MS, SK_CON_TIME_FULL, b, sizeof(b)), "2026-11-25 10:00:00Z");
    ck_assert_str_eq(sk_con_fmt_time(NOW_MS + 61500, SK_CON_TIME_SHORT, b, sizeof(b)), "11-25 10:01:01");
    ck_assert_str_eq(sk_con_fmt_time(NOW_MS, SK_CON_TIME_FIELD, b, sizeof(b)), "2026-11-25 10:00:00");
    ck_assert_str_eq(sk_con_fmt_time(-1, SK_CON_TIME_FULL, b, sizeof(b)), "-");

    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"now", NOW_MS},
        {" NOW ", NOW_MS},
        {"+90s", NOW_MS + 90000},
        {"+10m", NOW_MS + 600000},
        {"+1h30m", NOW_MS + 5400000},
        {"+2d", NOW_MS + 2 * 86400000LL},
        {"2026-11-25 10:00", NOW_MS},
        {"2026-11-25 10:00:30", NOW_MS + 30000},
        {"2026-11-25T10:00:00Z", NOW_MS},
        {"2026-11-25T18:00:00+08:00", NOW_MS},
        {"2026-11-25 10:00:00.250Z", NOW_MS + 250},
    };
    static const char *const bad[] = {
        "",           "+",     "+5x",           "tomorrow",         "+10m5", "2026-13-01 10:00", "2026-11-31 10:00",
        "2026-11-25", "10:00", "+99999999999d", "2026-11-25 25:00", NULL};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = -7;
        ck_assert_msg(sk_con_parse_time_input(good[i].text, NOW_MS, &v) == SK_OK, "\"%s\" refused", good[i].text);
        ck_assert_msg(v == good[i].ms, "\"%s\": %lld, want %lld", good[i].text, (long long)v, (long long)good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -7;
        ck_assert_msg(sk_con_parse_time_input(bad[i], NOW_MS, &v) == SK_ERR, "\"%s\" accepted",
                      bad[i] ? bad[i] : "NULL");
        ck_assert_int_eq(v, -7);
    }
}
END_TEST

START_TEST(rates)
{
    char b[SK_CON_FMT_LEN];
    ck_assert_str_eq(sk_con_fmt_rate(0, b, sizeof(b)), "0/s");
    ck_assert_str_eq(sk_con_fmt_rate(-3, b, sizeof(b)), "0/s");
    ck_assert_str_eq(sk_con_fmt_rate(0.0 / 0.0, b, sizeof(b)), "0/s");
    ck_assert_str_eq(sk_con_fmt_rate(3.44, b, sizeof(b)), "3.4/s");
    ck_assert_str_eq(sk_con_fmt_rate(12.2, b, sizeof(b)), "12/s");
    ck_assert_str_eq(sk_con_fmt_rate(1234, b, sizeof(b)), "1.2k/s");
    ck_assert_str_eq(sk_con_fmt_rate(2500000, b, sizeof(b)), "2.5M/s");
}
END_TEST

START_TEST(display_width)
{
    ck_assert_int_eq(sk_con_str_width("abc"), 3);
    ck_assert_int_eq(sk_con_str_width("秒杀手机"), 8);
    ck_assert_int_eq(sk_con_str_width("Double 11 测试"), 14);
    ck_assert_int_eq(sk_con_str_width("e\xcc\x81"), 1); /* e + combining acute */
    ck_assert_int_eq(sk_con_str_width("¥1.00"), 5);
    ck_assert_int_eq(sk_con_str_width("\x01"), 1); /* control: drawn as '?' */
    ck_assert_int_eq(sk_con_str_width("a\xff"
                                      "b"),
                     3);                               /* invalid byte: '?' */
    ck_assert_int_eq(sk_con_str_width("\xe7\xa7"), 2); /* a cut character: two '?' */
    ck_assert_int_eq(sk_con_str_width(""), 0);
    ck_assert_int_eq(sk_con_str_width(NULL), 0);
}
END_TEST

START_TEST(fit_to_columns)
{
    char b[64];
    ck_assert_int_eq(sk_con_str_fit("秒杀手机", 8, 1, b, sizeof(b)), 8);
    ck_assert_str_eq(b, "秒杀手机");
    ck_assert_int_eq(sk_con_str_fit("秒杀手机", 7, 1, b, sizeof(b)), 7);
    ck_assert_str_eq(b, "秒杀手…");
    /* 5 columns cannot hold two wide characters and the ellipsis evenly: pad */
    ck_assert_int_eq(sk_con_str_fit("秒杀手机", 6, 1, b, sizeof(b)), 6);
    ck_assert_str_eq(b, "秒杀… ");
    ck_assert_int_eq(sk_con_str_fit("秒杀手机", 6, 0, b, sizeof(b)), 5);
    ck_assert_str_eq(b, "秒杀…");
    ck_assert_int_eq(sk_con_str_fit("秒杀手机", 1, 1, b, sizeof(b)), 1);
    ck_assert_str_eq(b, "…");
    ck_assert_int_eq(sk_con_str_fit("abc", 6, 1, b, sizeof(b)), 6);
    ck_assert_str_eq(b, "abc   ");
    ck_assert_int_eq(sk_con_str_fit("abc", 0, 1, b, sizeof(b)), 0);
    ck_assert_str_eq(b, "");
    /* hostile text: escapes and broken bytes never reach the terminal */
    ck_assert_int_eq(sk_con_str_fit("\x1b[2Jx\xff", 10, 0, b, sizeof(b)), 6);
    ck_assert_str_eq(b, "?[2Jx?");
    /* every cut of a mixed string is valid UTF-8 and within the width */
    const char *mix = "Aé秒b杀😀c手机";
    for (int w = 0; w <= 16; w++) {
        int cols = sk_con_str_fit(mix, w, 0, b, sizeof(b));
        ck_assert_int_le(cols, w);
        ck_assert_int_eq(sk_con_str_width(b), cols);
        ck_assert_msg(valid_utf8(b), "width %d: cut inside a character", w);
    }
    /* a short buffer stops at a character boundary */
    char small[8];
    sk_con_str_fit("秒杀手机秒杀手机", 16, 1, small, sizeof(small));
    ck_assert(valid_utf8(small));
    ck_assert_uint_lt(strlen(small), sizeof(small));
    ck_assert_int_eq(sk_con_str_right("¥1.00", 8, b, sizeof(b)), 8);
    ck_assert_str_eq(b, "   ¥1.00");
    ck_assert_int_eq(sk_con_str_right("12345", 3, b, sizeof(b)), 3);
    ck_assert_str_eq(b, "12…");
}
END_TEST

START_TEST(stock_bars)
{
    int c[3];
#define BAR(i, r, p, w, a, b_, f)                                                                                      \
    do {                                                                                                               \
        sk_con_stock_bar(i, r, p, w, c);                                                                               \
        ck_assert_msg(c[0] == (a) && c[1] == (b_) && c[2] == (f), "bar(%d,%d,%d,%d) = %d/%d/%d", (int)(i), (int)(r),   \
                      (int)(p), (int)(w), c[0], c[1], c[2]);                                                           \
    } while (0)
    BAR(100, 0, 0, 10, 0, 0, 10);
    BAR(100, 50, 20, 10, 2, 3, 5);
    BAR(1000, 1, 0, 10, 0, 1, 9);    /* one unit shows */
    BAR(1000, 999, 0, 10, 0, 9, 1);  /* the last unit shows */
    BAR(1000, 1000, 1, 10, 1, 9, 0); /* one payment shows */
    BAR(10, 10, 10, 10, 10, 0, 0);
    BAR(10, 10, 9, 10, 9, 1, 0);
    BAR(0, 5, 0, 10, 0, 0, 10);    /* nothing to sell */
    BAR(10, 50, 70, 10, 10, 0, 0); /* clamped */
    BAR(10, -5, -1, 10, 0, 0, 10);
    BAR(10, 5, 0, 0, 0, 0, 0);
    BAR(100000000, 50000000, 0, 200, 0, 100, 100);
#undef BAR
}
END_TEST

/* --- model --------------------------------------------------------------------- */

START_TEST(classify_answers)
{
    char m[SK_CON_MSGLEN];
    struct sk_con_answer a = answer(0, NULL);
    a.transport = "Couldn't connect to server";
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_UNREACHABLE);
    ck_assert_str_eq(m, "daemon unreachable: Couldn't connect to server");

    a = answer(401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"wrong admin token\"}}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_UNAUTHORIZED);
    ck_assert_str_eq(m, "bad admin token (401): wrong admin token");
    a = answer(401, "nope");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_UNAUTHORIZED);
    ck_assert_str_eq(m, "bad admin token (401)");

    a = answer(404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such resource: /admin/v1/stats\"}}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_UNAVAILABLE);
    ck_assert_str_eq(m, "not available on this daemon");
    /* an unknown id is not a missing route */
    a = answer(404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no activity 9\"}}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_REFUSED);
    ck_assert_str_eq(m, "no activity 9 (404 not_found)");
    a = answer(409, "{\"error\":{\"code\":\"conflict\",\"message\":\"activity 3 is running\"}}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_REFUSED);
    ck_assert_str_eq(m, "activity 3 is running (409 conflict)");
    a = answer(503, "{\"error\":{\"code\":\"overloaded\",\"message\":\"stock store down\"}}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_FAILED);
    ck_assert_str_eq(m, "stock store down (503 overloaded)");
    a = answer(502, "<html>bad gateway</html>");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_FAILED);
    ck_assert_str_eq(m, "daemon answered 502 without a JSON error");
    a = answer(404, "{\"error\":42}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_REFUSED);
    a = answer(200, "{}");
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_OK);
    a = answer(204, NULL);
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_OK);
}
END_TEST

/* What the daemon answers to GET /admin/v1/activities (docs/api.md). */
static const char *activities_body(void)
{
    return "{\"activities\":["
           "{\"id\":2,\"name\":\"Double 11 测试\",\"state\":\"running\",\"publish_at\":\"2026-11-25T09:59:00.647Z\","
           "\"starts_at\":\"2026-11-25T10:00:00Z\",\"ends_at\":\"2026-11-25T10:30:00Z\","
           "\"created_at\":\"2026-11-25T09:00:00.619Z\",\"updated_at\":\"2026-11-25T09:59:00.648Z\","
           "\"items\":[{\"id\":5,\"activity_id\":2,\"sku\":\"PHONE-1\",\"title\":\"秒杀手机\",\"price_cents\":399900,"
           "\"seckill_price_cents\":99900,\"stock\":100,\"per_user_limit\":1},"
           "{\"id\":6,\"activity_id\":2,\"sku\":\"CASE-1\",\"title\":\"Phone case\",\"price_cents\":2000,"
           "\"seckill_price_cents\":100,\"stock\":500,\"per_user_limit\":2}]},"
           "{\"id\":1,\"name\":\"Old\",\"state\":\"ended\",\"publish_at\":null,"
           "\"starts_at\":\"2026-11-24T10:00:00Z\",\"ends_at\":\"2026-11-24T10:30:00Z\","
           "\"created_at\":\"2026-11-24T09:00:00Z\",\"updated_at\":\"2026-11-24T09:00:00Z\",\"items\":[]}"
           "]}";
}

START_TEST(activities_parsed)
{
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(200, activities_body());
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 1000), SK_CON_OK);
    ck_assert_int_eq(m.res[SK_CON_RES_ACTIVITIES].loaded, 1);
    ck_assert_str_eq(m.res[SK_CON_RES_ACTIVITIES].err, "");
    ck_assert_uint_eq(m.activities.n, 2);
    const struct sk_con_activity *x = &m.activities.v[0];
    ck_assert_int_eq(x->id, 2);
    ck_assert_str_eq(x->name, "Double 11 测试");
    ck_assert_int_eq(x->state, SK_CON_ACT_RUNNING);
    ck_assert_int_eq(x->publish_at, NOW_MS - 60000 + 647);
    ck_assert_int_eq(x->starts_at, NOW_MS);
    ck_assert_int_eq(x->ends_at, NOW_MS + 1800000);
    ck_assert_uint_eq(x->n_items, 2);
    ck_assert_str_eq(x->items[0].title, "秒杀手机");
    ck_assert_int_eq(x->items[0].price_cents, 399900);
    ck_assert_int_eq(x->items[1].per_user_limit, 2);
    ck_assert_int_eq(m.activities.v[1].publish_at, -1);
    ck_assert_int_eq(m.activities.v[1].state, SK_CON_ACT_ENDED);
    ck_assert_ptr_eq(sk_con_model_activity(&m, 1), &m.activities.v[1]);
    ck_assert_ptr_null(sk_con_model_activity(&m, 3));
    ck_assert_int_eq(sk_con_model_live_pick(&m), 2);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(bad_answers_keep_old_data)
{
    static const struct {
        const char *body;
        const char *err;
    } cases[] = {
        {"", "bad answer from the daemon: not JSON"},
        {"<html>", "bad answer from the daemon: not JSON"},
        {"[1,2]", "bad answer from the daemon: not a JSON object"},
        {"{}", "bad answer from the daemon: activities: missing"},
        {"{\"activities\":{}}", "bad answer from the daemon: activities: not an array"},
        {"{\"activities\":[7]}", "bad answer from the daemon: activities[0]: not an object"},
        {"{\"activities\":[{\"id\":\"x\"}]}", "bad answer from the daemon: activities[0].id: not an integer"},
        {"{\"activities\":[{\"id\":-4}]}", "bad answer from the daemon: activities[0].id: -4 is out of range"},
        {"{\"activities\":[{\"id\":1,\"name\":\"a\",\"state\":\"draft\",\"starts_at\":\"yesterday\"}]}",
         "bad answer from the daemon: activities[0].starts_at: not an RFC 3339 time"},
        {"{\"activities\":[{\"id\":1,\"name\":\"a\",\"state\":\"draft\",\"starts_at\":\"2026-11-25T10:00:00Z\","
         "\"ends_at\":\"2026-11-25T10:30:00Z\",\"items\":[{\"id\":1,\"sku\":\"A\",\"title\":\"t\","
         "\"price_cents\":1,\"seckill_price_cents\":1,\"stock\":\"10\",\"per_user_limit\":1}]}]}",
         "bad answer from the daemon: activities[0].items[0].stock: not an integer"},
    };
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer good = answer(200, activities_body());
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &good, 1000), SK_CON_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sk_con_answer a = answer(200, cases[i].body);
        ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 2000), SK_CON_BAD_ANSWER);
        ck_assert_msg(strncmp(m.res[SK_CON_RES_ACTIVITIES].err, cases[i].err, strlen(cases[i].err)) == 0,
                      "case %zu: \"%s\"", i, m.res[SK_CON_RES_ACTIVITIES].err);
        ck_assert_uint_eq(m.activities.n, 2);
        ck_assert_str_eq(m.activities.v[0].name, "Double 11 测试");
        ck_assert_int_eq(m.res[SK_CON_RES_ACTIVITIES].loaded, 1);
    }
    /* a good answer clears the error */
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &good, 3000), SK_CON_OK);
    ck_assert_str_eq(m.res[SK_CON_RES_ACTIVITIES].err, "");
    sk_con_model_free(&m);
}
END_TEST

/* Every truncation and a few thousand byte flips of a good answer: never a crash,
 * only OK or BAD_ANSWER, and the model stays usable. */
START_TEST(mangled_answers_never_crash)
{
    const char *body = activities_body();
    size_t len = strlen(body);
    char *copy = malloc(len + 1);
    struct sk_con_model m;
    ck_assert_ptr_nonnull(copy);
    sk_con_model_init(&m);
    for (size_t cut = 0; cut < len; cut++) {
        struct sk_con_answer a = {.status = 200, .body = body, .len = cut};
        ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 1), SK_CON_BAD_ANSWER);
    }
    ck_assert_int_eq(m.res[SK_CON_RES_ACTIVITIES].loaded, 0);
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, body, len + 1);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % len] = (char)(seed >> 20);
        }
        for (int kind = 0; kind < SK_CON_RES_COUNT; kind++) {
            struct sk_con_answer a = {.status = 200, .body = copy, .len = len};
            enum sk_con_outcome o = sk_con_model_apply(&m, (enum sk_con_res_kind)kind, &a, round);
            ck_assert(o == SK_CON_OK || o == SK_CON_BAD_ANSWER);
        }
    }
    for (size_t i = 0; i < m.activities.n; i++)
        ck_assert(valid_utf8(m.activities.v[i].name));
    free(copy);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(unknown_state_is_shown_not_fatal)
{
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(200, "{\"activities\":[{\"id\":1,\"name\":\"n\",\"state\":\"paused\","
                                         "\"starts_at\":\"2026-11-25T10:00:00Z\",\"ends_at\":\"2026-11-25T10:30:00Z\","
                                         "\"items\":[],\"extra\":{\"future\":true}}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 1), SK_CON_OK);
    ck_assert_int_eq(m.activities.v[0].state, SK_CON_ACT_UNKNOWN);
    ck_assert_str_eq(sk_con_act_state_name(m.activities.v[0].state), "?");
    ck_assert_int_eq(m.activities.v[0].created_at, -1);
    sk_con_model_free(&m);
}
END_TEST

static const char *stock_body(int activity, int reserved, int paid)
{
    static char b[512];
    snprintf(b, sizeof(b),
             "{\"activity_id\":%d,\"state\":\"running\",\"items\":[{\"item_id\":5,\"sku\":\"PHONE-1\",\"initial\":100,"
             "\"remaining\":%d,\"reserved\":%d,\"paid\":%d,\"published\":true,\"sale_state\":\"open\"}]}",
             activity, 100 - reserved, reserved, paid);
    return b;
}

START_TEST(stock_and_rates)
{
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(200, stock_body(2, 0, 0));
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 10000), SK_CON_OK);
    ck_assert_uint_eq(m.stock.n, 1);
    ck_assert_int_eq(m.stock.items[0].has_rate, 0);
    ck_assert_int_eq(m.stock.state, SK_CON_ACT_RUNNING);
    a = answer(200, stock_body(2, 5, 1));
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 11000), SK_CON_OK);
    ck_assert_int_eq(m.stock.items[0].has_rate, 1);
    ck_assert(m.stock.items[0].rate > 4.99 && m.stock.items[0].rate < 5.01);
    ck_assert_int_eq(m.stock.items[0].remaining, 95);
    ck_assert_int_eq(m.stock.items[0].paid, 1);
    ck_assert_str_eq(m.stock.items[0].sale_state, "open");
    /* half a second later, 5 more: 10/s */
    a = answer(200, stock_body(2, 10, 1));
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 11500), SK_CON_OK);
    ck_assert(m.stock.items[0].rate > 9.99 && m.stock.items[0].rate < 10.01);
    /* units given back: no negative rate */
    a = answer(200, stock_body(2, 8, 1));
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 12500), SK_CON_OK);
    ck_assert(m.stock.items[0].rate == 0.0);
    /* another activity: no rate against the old one */
    a = answer(200, stock_body(3, 50, 0));
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 13500), SK_CON_OK);
    ck_assert_int_eq(m.stock.items[0].has_rate, 0);
    a = answer(200, "{\"activity_id\":3,\"state\":\"running\",\"items\":[{\"item_id\":5,\"sku\":\"A\",\"initial\":1,"
                    "\"remaining\":1,\"reserved\":0,\"paid\":0,\"published\":\"yes\",\"sale_state\":\"open\"}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 14000), SK_CON_BAD_ANSWER);
    ck_assert_str_eq(m.res[SK_CON_RES_STOCK].err, "bad answer from the daemon: items[0].published: not true or false");
    ck_assert_int_eq(m.stock.items[0].reserved, 50);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(stats_and_missing_routes)
{
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer a =
        answer(404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such resource: /admin/v1/stats\"}}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 1), SK_CON_UNAVAILABLE);
    ck_assert_int_eq(m.res[SK_CON_RES_STATS].unavailable, 1);
    ck_assert_int_eq(m.res[SK_CON_RES_STATS].loaded, 0);
    ck_assert_str_eq(m.res[SK_CON_RES_STATS].err, "not available on this daemon");

    a = answer(200, "{\"uptime_s\":3723,\"requests_per_s\":1250.5,\"latency_p50_ms\":0.8,\"latency_p99_ms\":7.25,"
                    "\"reservations_per_s\":300,\"queue_lag\":12,\"orders_by_status\":{\"reserved\":3,\"created\":10,"
                    "\"paying\":0,\"paid\":2,\"closed\":1},\"plugins\":{\"stock\":{\"name\":\"redis\",\"ready\":true},"
                    "\"queue\":{\"name\":\"redis_streams\",\"ready\":false}},\"mariadb\":true}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 2), SK_CON_OK);
    ck_assert_int_eq(m.res[SK_CON_RES_STATS].unavailable, 0);
    ck_assert_int_eq(m.stats.uptime_s, 3723);
    ck_assert(m.stats.requests_per_s > 1250.4 && m.stats.requests_per_s < 1250.6);
    ck_assert(m.stats.latency_p99_ms > 7.24 && m.stats.latency_p99_ms < 7.26);
    ck_assert(m.stats.reservations_per_s > 299.9);
    ck_assert_int_eq(m.stats.queue_lag, 12);
    ck_assert_int_eq(m.stats.orders_by_status[SK_CON_ORD_CREATED], 10);
    ck_assert_int_eq(m.stats.orders_by_status[SK_CON_ORD_CLOSED], 1);
    ck_assert_uint_eq(m.stats.n_plugins, 2);
    ck_assert_str_eq(m.stats.plugins[1].kind, "queue");
    ck_assert_str_eq(m.stats.plugins[1].name, "redis_streams");
    ck_assert_int_eq(m.stats.plugins[1].ready, 0);
    ck_assert_int_eq(m.stats.mariadb, 1);

    /* the optional parts may be missing; the required ones may not */
    /* what a daemon without a queue plugin answers: queue_lag null, and fields the
     * console does not show */
    a = answer(200, "{\"uptime_s\":1,\"requests_per_s\":0,\"latency_p50_ms\":0,\"latency_p99_ms\":0,"
                    "\"reservations_per_s\":0,\"window_ms\":10000,\"units_reserved\":4,\"queue_lag\":null}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 3), SK_CON_OK);
    ck_assert_int_eq(m.stats.queue_lag, -1);
    ck_assert_int_eq(m.stats.orders_by_status[SK_CON_ORD_PAID], -1);
    ck_assert_int_eq(m.stats.mariadb, -1);
    ck_assert_uint_eq(m.stats.n_plugins, 0);
    a = answer(200, "{\"uptime_s\":1,\"requests_per_s\":0,\"latency_p50_ms\":0,\"latency_p99_ms\":0,"
                    "\"reservations_per_s\":0,\"queue_lag\":\"3\"}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 4), SK_CON_BAD_ANSWER);
    ck_assert_str_eq(m.res[SK_CON_RES_STATS].err, "bad answer from the daemon: queue_lag: not an integer");
    a = answer(200, "{\"uptime_s\":1,\"requests_per_s\":\"fast\"}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 4), SK_CON_BAD_ANSWER);
    ck_assert_str_eq(m.res[SK_CON_RES_STATS].err, "bad answer from the daemon: requests_per_s: not a number");
    ck_assert_int_eq(m.stats.uptime_s, 1);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(orders_and_time_left)
{
    struct sk_con_model m;
    char b[SK_CON_FMT_LEN];
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(
        200, "{\"orders\":[{\"order_no\":\"01M89AF9VHD2RQNPX31YY2V4G3-2\",\"activity_id\":7,\"item_id\":12,"
             "\"user_id\":1001,\"status\":\"created\",\"amount_cents\":99900,\"reserved_at\":\"2026-11-25T09:59:00Z\","
             "\"expires_at\":\"2026-11-25T10:01:30Z\"},"
             "{\"order_no\":\"X-2\",\"activity_id\":7,\"item_id\":12,\"user_id\":1002,\"status\":\"paid\","
             "\"amount_cents\":99900,\"reserved_at\":\"2026-11-25T09:59:00Z\",\"expires_at\":null}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ORDERS, &a, 1), SK_CON_OK);
    ck_assert_uint_eq(m.orders.n, 2);
    ck_assert_str_eq(m.orders.v[0].order_no, "01M89AF9VHD2RQNPX31YY2V4G3-2");
    ck_assert_int_eq(m.orders.v[0].status, SK_CON_ORD_CREATED);
    ck_assert_int_eq(m.orders.v[0].user_id, 1001);
    ck_assert_str_eq(sk_con_order_time_left(&m.orders.v[0], NOW_MS, b, sizeof(b)), "1m30s");
    ck_assert_str_eq(sk_con_order_time_left(&m.orders.v[0], NOW_MS + 90000, b, sizeof(b)), "expired");
    ck_assert_str_eq(sk_con_order_time_left(&m.orders.v[1], NOW_MS, b, sizeof(b)), "-");
    ck_assert_int_eq(m.orders.v[1].expires_at, -1);
    a = answer(200, "{\"orders\":[{\"order_no\":\"A\",\"activity_id\":7,\"item_id\":12,\"user_id\":1,"
                    "\"status\":\"lost\",\"amount_cents\":1}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ORDERS, &a, 2), SK_CON_BAD_ANSWER);
    ck_assert_str_eq(m.res[SK_CON_RES_ORDERS].err,
                     "bad answer from the daemon: orders[0].status: unknown status \"lost\"");
    ck_assert_uint_eq(m.orders.n, 2);
    enum sk_con_ord_status st = SK_CON_ORD_PAID;
    ck_assert_int_eq(sk_con_ord_status_parse("closed", &st), SK_OK);
    ck_assert_int_eq(st, SK_CON_ORD_CLOSED);
    ck_assert_int_eq(sk_con_ord_status_parse("nope", &st), SK_ERR);
    ck_assert_int_eq(st, SK_CON_ORD_CLOSED);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(blacklist_parsed)
{
    struct sk_con_model m;
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(200, "{\"users\":[{\"user_id\":42,\"reason\":\"脚本抢购\",\"added_at\":"
                                         "\"2026-11-25T10:00:00Z\"},{\"user_id\":43,\"reason\":null}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_BLACKLIST, &a, 1), SK_CON_OK);
    ck_assert_uint_eq(m.blacklist.n, 2);
    ck_assert_int_eq(m.blacklist.v[0].user_id, 42);
    ck_assert_str_eq(m.blacklist.v[0].reason, "脚本抢购");
    ck_assert_int_eq(m.blacklist.v[0].added_at, NOW_MS);
    ck_assert_str_eq(m.blacklist.v[1].reason, "");
    ck_assert_int_eq(m.blacklist.v[1].added_at, -1);
    a = answer(200, "{\"users\":[{\"reason\":\"x\"}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_BLACKLIST, &a, 2), SK_CON_BAD_ANSWER);
    ck_assert_str_eq(m.res[SK_CON_RES_BLACKLIST].err, "bad answer from the daemon: users[0].user_id: missing");
    ck_assert_uint_eq(m.blacklist.n, 2);
    sk_con_model_free(&m);
}
END_TEST

START_TEST(next_events_and_live_pick)
{
    struct sk_con_activity a;
    const char *what;
    int64_t at;
    memset(&a, 0, sizeof(a));
    a.publish_at = NOW_MS + 60000;
    a.starts_at = NOW_MS + 120000;
    a.ends_at = NOW_MS + 180000;
    a.state = SK_CON_ACT_SCHEDULED;
    ck_assert(sk_con_activity_next_event(&a, NOW_MS, &what, &at));
    ck_assert_str_eq(what, "publish");
    ck_assert_int_eq(at, a.publish_at);
    ck_assert(sk_con_activity_next_event(&a, NOW_MS + 61000, &what, &at)); /* scheduler's tick not yet run */
    ck_assert_str_eq(what, "start");
    a.state = SK_CON_ACT_PUBLISHED;
    ck_assert(sk_con_activity_next_event(&a, NOW_MS, &what, &at));
    ck_assert_str_eq(what, "start");
    a.state = SK_CON_ACT_RUNNING;
    ck_assert(sk_con_activity_next_event(&a, NOW_MS, &what, &at));
    ck_assert_str_eq(what, "end");
    ck_assert_int_eq(at, a.ends_at);
    a.state = SK_CON_ACT_ENDED;
    ck_assert(!sk_con_activity_next_event(&a, NOW_MS, &what, &at));
    a.state = SK_CON_ACT_DRAFT;
    ck_assert(!sk_con_activity_next_event(&a, NOW_MS, &what, &at));

    struct sk_con_model m;
    sk_con_model_init(&m);
    ck_assert_int_eq(sk_con_model_live_pick(&m), 0);
    struct sk_con_answer ans =
        answer(200, "{\"activities\":["
                    "{\"id\":3,\"name\":\"a\",\"state\":\"scheduled\",\"starts_at\":\"2026-11-25T10:00:00Z\","
                    "\"ends_at\":\"2026-11-25T10:30:00Z\",\"items\":[]},"
                    "{\"id\":2,\"name\":\"b\",\"state\":\"published\",\"starts_at\":\"2026-11-25T10:00:00Z\","
                    "\"ends_at\":\"2026-11-25T10:30:00Z\",\"items\":[]},"
                    "{\"id\":1,\"name\":\"c\",\"state\":\"draft\",\"starts_at\":\"2026-11-25T10:00:00Z\","
                    "\"ends_at\":\"2026-11-25T10:30:00Z\",\"items\":[]}]}");
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &ans, 1), SK_CON_OK);
    ck_assert_int_eq(sk_con_model_live_pick(&m), 2);
    sk_con_model_free(&m);
}
END_TEST

/* --- form ---------------------------------------------------------------------- */

START_TEST(field_editing)
{
    struct sk_con_field f;
    sk_con_field_set(&f, "");
    ck_assert_int_eq(sk_con_field_insert(&f, "ab", 2), SK_OK);
    ck_assert_int_eq(sk_con_field_insert(&f, "秒", strlen("秒")), SK_OK);
    ck_assert_int_eq(sk_con_field_insert(&f, "杀", strlen("杀")), SK_OK);
    ck_assert_str_eq(f.text, "ab秒杀");
    ck_assert_int_eq(sk_con_field_cursor_col(&f), 6);
    sk_con_field_left(&f);
    ck_assert_int_eq(sk_con_field_cursor_col(&f), 4);
    ck_assert_int_eq(sk_con_field_insert(&f, "x", 1), SK_OK);
    ck_assert_str_eq(f.text, "ab秒x杀");
    sk_con_field_backspace(&f);
    sk_con_field_backspace(&f); /* the whole wide character */
    ck_assert_str_eq(f.text, "ab杀");
    ck_assert_uint_eq(f.cur, 2);
    sk_con_field_delete(&f);
    ck_assert_str_eq(f.text, "ab");
    sk_con_field_home(&f);
    sk_con_field_backspace(&f); /* nothing before the cursor */
    sk_con_field_left(&f);
    ck_assert_str_eq(f.text, "ab");
    ck_assert_uint_eq(f.cur, 0);
    sk_con_field_end(&f);
    sk_con_field_right(&f);
    sk_con_field_delete(&f);
    ck_assert_uint_eq(f.cur, 2);
    /* refused: broken UTF-8, control characters, too much */
    ck_assert_int_eq(sk_con_field_insert(&f, "\xe7\xa7", 2), SK_ERR);
    ck_assert_int_eq(sk_con_field_insert(&f, "\x1b", 1), SK_ERR);
    ck_assert_int_eq(sk_con_field_insert(&f, "", 0), SK_ERR);
    ck_assert_str_eq(f.text, "ab");
    char big[SK_CON_FIELD_SIZE + 8];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(sk_con_field_insert(&f, big, strlen(big)), SK_ERR);
    ck_assert_str_eq(f.text, "ab");
    /* set cuts an over-long text at a character */
    char longzh[SK_CON_FIELD_SIZE * 2] = "";
    for (int i = 0; i < SK_CON_FIELD_SIZE / 3 + 5; i++)
        strcat(longzh, "秒");
    sk_con_field_set(&f, longzh);
    ck_assert(valid_utf8(f.text));
    ck_assert_uint_lt(f.len, SK_CON_FIELD_SIZE);
    /* the view scrolls so that the cursor fits */
    sk_con_field_set(&f, "0123456789abcdefghij");
    size_t start = sk_con_field_view_start(&f, 10);
    ck_assert_uint_eq(start, 11);
    sk_con_field_home(&f);
    ck_assert_uint_eq(sk_con_field_view_start(&f, 10), 0);
    sk_con_field_set(&f, "秒杀手机秒杀手机");
    start = sk_con_field_view_start(&f, 5);
    ck_assert_int_lt(sk_con_str_width(f.text + start), 5);
    ck_assert_int_eq((f.text[start] & 0xC0) != 0x80, 1);
}
END_TEST

/* Fill the form for a good activity: two items. */
static void fill_good(struct sk_con_form *f)
{
    char err[SK_CON_MSGLEN];
    sk_con_form_init_new(f);
    sk_con_field_set(&f->head[SK_CON_F_NAME], "Double 11 测试");
    sk_con_field_set(&f->head[SK_CON_F_STARTS_AT], "+10m");
    sk_con_field_set(&f->head[SK_CON_F_ENDS_AT], "+40m");
    sk_con_field_set(&f->items[0].f[SK_CON_FI_SKU], "PHONE-1");
    sk_con_field_set(&f->items[0].f[SK_CON_FI_TITLE], "秒杀手机");
    sk_con_field_set(&f->items[0].f[SK_CON_FI_PRICE], "3999");
    sk_con_field_set(&f->items[0].f[SK_CON_FI_SECKILL], "999.5");
    sk_con_field_set(&f->items[0].f[SK_CON_FI_STOCK], "100");
    f->focus = sk_con_form_index(0, SK_CON_FI_STOCK);
    ck_assert_int_eq(sk_con_form_add_item(f, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(f->focus, sk_con_form_index(1, SK_CON_FI_SKU));
    sk_con_field_set(&f->items[1].f[SK_CON_FI_SKU], "CASE-1");
    sk_con_field_set(&f->items[1].f[SK_CON_FI_TITLE], "Phone case");
    sk_con_field_set(&f->items[1].f[SK_CON_FI_PRICE], "20");
    sk_con_field_set(&f->items[1].f[SK_CON_FI_SECKILL], "1");
    sk_con_field_set(&f->items[1].f[SK_CON_FI_STOCK], "500");
    sk_con_field_set(&f->items[1].f[SK_CON_FI_LIMIT], "2");
}

START_TEST(form_builds_the_body)
{
    struct sk_con_form f;
    char *body = NULL, err[SK_CON_MSGLEN], ts[SK_TIME_TEXT_LEN];
    size_t bad = 99;
    fill_good(&f);
    ck_assert_uint_eq(sk_con_form_field_count(&f), 4 + 2 * 6);
    ck_assert_int_eq(sk_con_form_build(&f, NOW_MS, &body, &bad, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(bad, 99);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "Double 11 测试");
    ck_assert(json_is_null(json_object_get(j, "publish_at")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "starts_at")), sk_time_format(NOW_MS + 600000, ts));
    ck_assert_str_eq(json_string_value(json_object_get(j, "ends_at")), sk_time_format(NOW_MS + 2400000, ts));
    json_t *items = json_object_get(j, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    json_t *i0 = json_array_get(items, 0), *i1 = json_array_get(items, 1);
    ck_assert_str_eq(json_string_value(json_object_get(i0, "title")), "秒杀手机");
    ck_assert_int_eq(json_integer_value(json_object_get(i0, "price_cents")), 399900);
    ck_assert_int_eq(json_integer_value(json_object_get(i0, "seckill_price_cents")), 99950);
    ck_assert_int_eq(json_integer_value(json_object_get(i0, "stock")), 100);
    ck_assert_int_eq(json_integer_value(json_object_get(i0, "per_user_limit")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(i1, "per_user_limit")), 2);
    ck_assert_ptr_null(json_object_get(i0, "id")); /* new items carry no id */
    json_decref(j);
    free(body);
    sk_con_form_free(&f);
}
END_TEST

START_TEST(form_validation)
{
    static const struct {
        size_t index; /* field to spoil */
        const char *text;
        const char *err;
    } cases[] = {
        {SK_CON_F_NAME, "   ", "Name: required, at most 256 bytes"},
        {SK_CON_F_STARTS_AT, "tomorrow", "Starts at: \"tomorrow\" is not a time such as"},
        {SK_CON_F_STARTS_AT, "", "Starts at: required"},
        {SK_CON_F_ENDS_AT, "+5m", "Ends at: must be after Starts at"},
        {SK_CON_F_PUBLISH_AT, "+20m", "Publish at: must not be after Starts at"},
        {4 + SK_CON_FI_SKU, "", "Item 1 SKU: required, at most 64 bytes"},
        {4 + SK_CON_FI_TITLE, "", "Item 1 Title: required, at most 256 bytes"},
        {4 + SK_CON_FI_PRICE, "12.345", "Item 1 Price: \"12.345\" is not an amount"},
        {4 + SK_CON_FI_SECKILL, "5000", "Item 1 Seckill price: must not be above the price"},
        {4 + SK_CON_FI_STOCK, "0", "Item 1 Stock: must be a whole number from 1 to 100000000"},
        {4 + SK_CON_FI_STOCK, "100000001", "Item 1 Stock: must be a whole number from 1 to 100000000"},
        {4 + SK_CON_FI_LIMIT, "1001", "Item 1 Limit: must be a whole number from 1 to 1000"},
        {4 + 6 + SK_CON_FI_SKU, " PHONE-1 ", "Item 2 SKU: \"PHONE-1\" is already item 1's"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sk_con_form f;
        char *body = NULL, err[SK_CON_MSGLEN] = "", one[SK_CON_MSGLEN] = "";
        size_t bad = 999;
        fill_good(&f);
        sk_con_field_set(sk_con_form_field(&f, cases[i].index), cases[i].text);
        ck_assert_int_eq(sk_con_form_build(&f, NOW_MS, &body, &bad, err, sizeof(err)), SK_ERR);
        ck_assert_ptr_null(body);
        ck_assert_msg(bad == cases[i].index, "case %zu: bad field %zu", i, bad);
        ck_assert_msg(strncmp(err, cases[i].err, strlen(cases[i].err)) == 0, "case %zu: \"%s\"", i, err);
        /* the same sentence when the operator leaves the field */
        ck_assert_int_eq(sk_con_form_check_field(&f, cases[i].index, NOW_MS, one, sizeof(one)), SK_ERR);
        ck_assert_str_eq(one, err);
        sk_con_form_free(&f);
    }
    char label[64];
    struct sk_con_form f;
    fill_good(&f);
    ck_assert_str_eq(sk_con_form_label(&f, sk_con_form_index(1, SK_CON_FI_SECKILL), label, sizeof(label)),
                     "Item 2 Seckill price");
    char err[SK_CON_MSGLEN];
    ck_assert_int_eq(sk_con_form_check_field(&f, 999, NOW_MS, err, sizeof(err)), SK_ERR);
    for (size_t i = 0; i < sk_con_form_field_count(&f); i++)
        ck_assert_int_eq(sk_con_form_check_field(&f, i, NOW_MS, err, sizeof(err)), SK_OK);
    sk_con_form_free(&f);
}
END_TEST

START_TEST(form_items_and_focus)
{
    struct sk_con_form f;
    char err[SK_CON_MSGLEN];
    sk_con_form_init_new(&f);
    ck_assert_uint_eq(f.n_items, 1);
    ck_assert_str_eq(f.items[0].f[SK_CON_FI_LIMIT].text, "1");
    ck_assert_int_eq(sk_con_form_remove_item(&f, err, sizeof(err)), SK_ERR); /* focus on a head field */
    ck_assert_str_eq(err, "move to an item's row to remove it");
    f.focus = sk_con_form_index(0, SK_CON_FI_TITLE);
    ck_assert_int_eq(sk_con_form_remove_item(&f, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "an activity needs at least one item");
    sk_con_field_set(&f.items[0].f[SK_CON_FI_SKU], "A");
    ck_assert_int_eq(sk_con_form_add_item(&f, err, sizeof(err)), SK_OK);
    sk_con_field_set(&f.items[1].f[SK_CON_FI_SKU], "B");
    f.focus = 0;
    ck_assert_int_eq(sk_con_form_add_item(&f, err, sizeof(err)), SK_OK); /* from a head field: at the end */
    ck_assert_uint_eq(f.n_items, 3);
    ck_assert_uint_eq(f.focus, sk_con_form_index(2, SK_CON_FI_SKU));
    f.focus = sk_con_form_index(0, SK_CON_FI_STOCK);
    ck_assert_int_eq(sk_con_form_remove_item(&f, err, sizeof(err)), SK_OK);
    ck_assert_str_eq(f.items[0].f[SK_CON_FI_SKU].text, "B");
    ck_assert_uint_eq(f.focus, sk_con_form_index(0, SK_CON_FI_STOCK));
    /* focus wraps */
    size_t n = sk_con_form_field_count(&f);
    f.focus = n - 1;
    sk_con_form_next(&f);
    ck_assert_uint_eq(f.focus, 0);
    sk_con_form_prev(&f);
    ck_assert_uint_eq(f.focus, n - 1);
    /* the daemon's field names move the focus */
    ck_assert_int_eq(sk_con_form_focus_error(&f, "items[1].stock: must be between 1 and 100000000 (400 bad_request)"),
                     1);
    ck_assert_uint_eq(f.focus, sk_con_form_index(1, SK_CON_FI_STOCK));
    ck_assert_int_eq(sk_con_form_focus_error(&f, "ends_at: must be after starts_at"), 1);
    ck_assert_uint_eq(f.focus, SK_CON_F_ENDS_AT);
    ck_assert_int_eq(sk_con_form_focus_error(&f, "items[0].seckill_price_cents: too high"), 1);
    ck_assert_uint_eq(f.focus, sk_con_form_index(0, SK_CON_FI_SECKILL));
    ck_assert_int_eq(sk_con_form_focus_error(&f, "items[9].stock: x"), 0);
    ck_assert_int_eq(sk_con_form_focus_error(&f, "MariaDB unavailable"), 0);
    ck_assert_uint_eq(f.focus, sk_con_form_index(0, SK_CON_FI_SECKILL));
    sk_con_form_free(&f);
}
END_TEST

START_TEST(form_edits_an_activity)
{
    struct sk_con_model m;
    struct sk_con_form f;
    char *body = NULL, err[SK_CON_MSGLEN];
    size_t bad;
    sk_con_model_init(&m);
    struct sk_con_answer a = answer(200, activities_body());
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 1), SK_CON_OK);
    sk_con_form_init_edit(&f, &m.activities.v[0]);
    ck_assert_int_eq(f.activity_id, 2);
    ck_assert_str_eq(f.head[SK_CON_F_NAME].text, "Double 11 测试");
    ck_assert_str_eq(f.head[SK_CON_F_STARTS_AT].text, "2026-11-25 10:00:00");
    ck_assert_str_eq(f.head[SK_CON_F_PUBLISH_AT].text, "2026-11-25 09:59:00");
    ck_assert_str_eq(f.items[0].f[SK_CON_FI_PRICE].text, "3999.00");
    ck_assert_str_eq(f.items[1].f[SK_CON_FI_LIMIT].text, "2");
    ck_assert_int_eq(sk_con_form_build(&f, NOW_MS, &body, &bad, err, sizeof(err)), SK_OK);
    json_t *j = json_loads(body, 0, NULL);
    json_t *i0 = json_array_get(json_object_get(j, "items"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(i0, "id")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(j, "starts_at")), "2026-11-25T10:00:00Z");
    ck_assert_str_eq(json_string_value(json_object_get(j, "publish_at")), "2026-11-25T09:59:00Z");
    json_decref(j);
    free(body);
    sk_con_form_free(&f);
    /* an activity without items still gets a row to fill */
    sk_con_form_init_edit(&f, &m.activities.v[1]);
    ck_assert_uint_eq(f.n_items, 1);
    ck_assert_str_eq(f.head[SK_CON_F_PUBLISH_AT].text, "");
    sk_con_form_free(&f);
    sk_con_model_free(&m);
}
END_TEST

/* --- keys ---------------------------------------------------------------------- */

START_TEST(key_table)
{
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_ACTIVITIES, 'q'), SK_CON_A_QUIT);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_LIVE, '?'), SK_CON_A_HELP);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_ACTIVITIES, 'n'), SK_CON_A_NEW);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_ORDERS, 'n'), SK_CON_A_NONE);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_ORDERS, 'a'), SK_CON_A_FILTER_ACTIVITY);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_BLACKLIST, 'a'), SK_CON_A_BL_ADD);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_FORM, SK_CON_KEY_TAB), SK_CON_A_NEXT_FIELD);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_ORDERS, SK_CON_KEY_TAB), SK_CON_A_NEXT_SCREEN);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_FORM, SK_CON_KEY_F2), SK_CON_A_SAVE);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_FORM, SK_CON_CTRL('s')), SK_CON_A_SAVE);
    /* in a form, letters and '?' are text */
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_FORM, 'q'), SK_CON_A_NONE);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_FORM, '?'), SK_CON_A_NONE);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_PROMPT, 'y'), SK_CON_A_NONE);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_CONFIRM, 'y'), SK_CON_A_YES);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_CONFIRM, SK_CON_KEY_ESC), SK_CON_A_NO);
    ck_assert_int_eq(sk_con_key_action(SK_CON_IN_CONFIRM, 'q'), SK_CON_A_NONE);

    /* no binding is shadowed by an earlier one for the same key in the same place,
     * and every binding says what it does */
    for (size_t i = 0; i < sk_con_bindings_count; i++) {
        const struct sk_con_binding *b = &sk_con_bindings[i];
        ck_assert_msg(b->help != NULL && b->help[0] != '\0', "binding %zu has no help", i);
        ck_assert_msg(!b->in_bar || (b->label != NULL && b->label[0] != '\0'), "binding %zu has no label", i);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(!((sk_con_bindings[j].where & b->where) && sk_con_bindings[j].key == b->key),
                          "binding %zu (%s) is shadowed by %zu", i, b->key_name, j);
    }
}
END_TEST

START_TEST(help_bars)
{
    static const unsigned screens[] = {SK_CON_IN_ACTIVITIES, SK_CON_IN_LIVE, SK_CON_IN_ORDERS, SK_CON_IN_BLACKLIST};
    char b[256];
    for (size_t i = 0; i < 4; i++) {
        sk_con_help_bar_text(screens[i], 80, b, sizeof(b));
        ck_assert_msg(strncmp(b, "? Help  q Quit", 14) == 0, "screen %zu: \"%s\"", i, b);
        ck_assert_int_le(sk_con_str_width(b), 80);
    }
    ck_assert_str_eq(sk_con_help_bar_text(SK_CON_IN_ACTIVITIES, 80, b, sizeof(b)),
                     "? Help  q Quit  n New  e Edit  p Publish  t Pub at  c Cancel  d Delete  l Live");
    ck_assert_str_eq(sk_con_help_bar_text(SK_CON_IN_ACTIVITIES, 15, b, sizeof(b)), "? Help  q Quit");
    ck_assert_str_eq(sk_con_help_bar_text(SK_CON_IN_ACTIVITIES, 3, b, sizeof(b)), "");
    sk_con_help_bar_text(SK_CON_IN_FORM, 80, b, sizeof(b));
    ck_assert_msg(strncmp(b, "F2 Save  Esc Cancel  Tab Next", 29) == 0, "form: \"%s\"", b);
    ck_assert_str_eq(sk_con_help_bar_text(SK_CON_IN_CONFIRM, 80, b, sizeof(b)), "y Yes  n No");
    ck_assert_str_eq(sk_con_help_bar_text(SK_CON_IN_PROMPT, 80, b, sizeof(b)), "Enter OK  Esc Cancel");
}
END_TEST

START_TEST(list_cursor)
{
    struct sk_con_cursor c = {0, 0};
    ck_assert(sk_con_cursor_move(&c, SK_CON_A_DOWN, 0, 5)); /* empty list */
    ck_assert_int_eq(c.sel, 0);
    for (int i = 0; i < 4; i++)
        sk_con_cursor_move(&c, SK_CON_A_DOWN, 10, 3);
    ck_assert_int_eq(c.sel, 4);
    ck_assert_int_eq(c.top, 2);
    sk_con_cursor_move(&c, SK_CON_A_BOTTOM, 10, 3);
    ck_assert_int_eq(c.sel, 9);
    ck_assert_int_eq(c.top, 7);
    sk_con_cursor_move(&c, SK_CON_A_PAGE_UP, 10, 3);
    ck_assert_int_eq(c.sel, 7);
    ck_assert_int_eq(c.top, 7);
    sk_con_cursor_move(&c, SK_CON_A_TOP, 10, 3);
    ck_assert_int_eq(c.sel, 0);
    ck_assert_int_eq(c.top, 0);
    sk_con_cursor_move(&c, SK_CON_A_UP, 10, 3);
    ck_assert_int_eq(c.sel, 0);
    ck_assert(!sk_con_cursor_move(&c, SK_CON_A_QUIT, 10, 3));
    /* the list shrinks under the cursor (a refresh) */
    c.sel = 9;
    c.top = 7;
    sk_con_cursor_clamp(&c, 4, 3);
    ck_assert_int_eq(c.sel, 3);
    ck_assert_int_eq(c.top, 1);
    /* the window grows (a resize): no empty rows under a list that could fill them */
    sk_con_cursor_clamp(&c, 4, 10);
    ck_assert_int_eq(c.top, 0);
}
END_TEST

/* --- settings ------------------------------------------------------------------ */

START_TEST(settings_yaml)
{
    struct sk_con_settings s;
    char err[512];
    const char *good = "# console\nadmin_url: http://127.0.0.1:9081\ntoken: abc\ntimeout_ms: 1500\nmonochrome: true\n";
    sk_con_settings_defaults(&s);
    ck_assert_str_eq(s.admin_url, SK_CON_DEFAULT_URL);
    ck_assert_int_eq(sk_con_settings_apply_yaml(&s, "c.yaml", good, strlen(good), err, sizeof(err)), SK_OK);
    ck_assert_str_eq(s.admin_url, "http://127.0.0.1:9081");
    ck_assert_str_eq(s.token, "abc");
    ck_assert_int_eq(s.timeout_ms, 1500);
    ck_assert_int_eq(s.monochrome, 1);

    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"admin_url: http://x\ncolour: red\n", "c.yaml:2: colour: unknown key"},
        {"admin_url: ftp://x\n", "c.yaml:1: admin_url: must be an http:// or https:// URL"},
        {"token: ''\n", "c.yaml:1: token: must be 1 to 511 bytes"},
        {"timeout_ms: 5\n", "c.yaml:1: timeout_ms: must be a number from 100 to 60000"},
        {"timeout_ms: soon\n", "c.yaml:1: timeout_ms: must be a number from 100 to 60000"},
        {"monochrome: maybe\n", "c.yaml:1: monochrome: must be true or false"},
        {"token: [a, b]\n", "c.yaml:1: token: must be a single value"},
        {"- a\n- b\n", "c.yaml:1: the file must be a mapping"},
        {"token: 'abc\n", "c.yaml:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sk_con_settings before = s;
        ck_assert_int_eq(sk_con_settings_apply_yaml(&s, "c.yaml", bad[i].text, strlen(bad[i].text), err, sizeof(err)),
                         SK_ERR);
        ck_assert_msg(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0, "case %zu: \"%s\"", i, err);
        ck_assert(memcmp(&before, &s, sizeof(s)) == 0); /* untouched */
    }
    ck_assert_int_eq(sk_con_settings_apply_yaml(&s, "c.yaml", "", 0, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(sk_con_settings_apply_file(&s, "/nonexistent/console.yaml", err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "/nonexistent/console.yaml: No such file or directory");
}
END_TEST

START_TEST(settings_precedence)
{
    struct sk_con_settings s;
    char err[700], dir[] = "/tmp/skconsole-XXXXXX", sub[300], path[400];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/seckill", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/console.yaml", sub);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("admin_url: http://127.0.0.1:7001\ntoken: from-file\n", f);
    fclose(f);

    char *a0[] = {"seckill-console", NULL};
    /* the default file under XDG_CONFIG_HOME */
    ck_assert_int_eq(sk_con_settings_resolve(&s, 1, a0, NULL, NULL, "/nohome", dir, err, sizeof(err)),
                     SK_CON_SETTINGS_RUN);
    ck_assert_str_eq(s.admin_url, "http://127.0.0.1:7001");
    ck_assert_str_eq(s.token, "from-file");
    ck_assert_str_eq(s.file, path);
    /* the environment beats the file, flags beat both */
    ck_assert_int_eq(sk_con_settings_resolve(&s, 1, a0, "from-env", "1", NULL, dir, err, sizeof(err)),
                     SK_CON_SETTINGS_RUN);
    ck_assert_str_eq(s.token, "from-env");
    ck_assert_int_eq(s.monochrome, 1);
    char *a1[] = {"seckill-console", "-c",  path,     "--url", "http://[::1]:8081", "--token", "from-flag",
                  "--timeout-ms",    "250", "--mono", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 10, a1, "from-env", NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_RUN);
    ck_assert_str_eq(s.admin_url, "http://[::1]:8081");
    ck_assert_str_eq(s.token, "from-flag");
    ck_assert_int_eq(s.timeout_ms, 250);
    ck_assert_int_eq(s.monochrome, 1);

    struct sk_con_settings before = s;
    char *a2[] = {"seckill-console", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 1, a2, NULL, NULL, "/nohome", NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_ERROR);
    ck_assert_msg(strstr(err, "no admin token") != NULL, "%s", err);
    ck_assert(memcmp(&before, &s, sizeof(s)) == 0);
    char *a3[] = {"seckill-console", "--url", "localhost:8081", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 3, a3, "t", NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_ERROR);
    ck_assert_str_eq(err, "--url: must be an http:// or https:// URL");
    char *a4[] = {"seckill-console", "--bogus", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 2, a4, "t", NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_ERROR);
    ck_assert_str_eq(err, "unknown option --bogus (see --help)");
    char *a5[] = {"seckill-console", "--token", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 2, a5, "t", NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_ERROR);
    ck_assert_str_eq(err, "--token needs a value (see --help)");
    char *a6[] = {"seckill-console", "-c", "/nonexistent.yaml", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 3, a6, "t", NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_ERROR);
    char *a7[] = {"seckill-console", "--help", NULL};
    ck_assert_int_eq(sk_con_settings_resolve(&s, 2, a7, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     SK_CON_SETTINGS_HELP);
    ck_assert(memcmp(&before, &s, sizeof(s)) == 0);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}
END_TEST

/* --- network ------------------------------------------------------------------- */

struct got {
    int calls;
    struct sk_con_tag tag;
    long status;
    char body[4096];
    char transport[256];
};

static void collect(void *arg, const struct sk_con_tag *tag, const struct sk_con_answer *a)
{
    struct got *g = arg;
    size_t n = a->len < sizeof(g[0].body) - 1 ? a->len : sizeof(g[0].body) - 1;
    /* answers land in the slot of their tag.kind */
    struct got *slot = &g[tag->kind];
    slot->calls++;
    slot->tag = *tag;
    slot->status = a->status;
    memcpy(slot->body, a->body ? a->body : "", a->body ? n : 0);
    slot->body[a->body ? n : 0] = '\0';
    snprintf(slot->transport, sizeof(slot->transport), "%s", a->transport ? a->transport : "");
}

/* Drive the loop until nothing is in flight (at most 10 s). */
static void drain(struct sk_con_net *net)
{
    for (int i = 0; i < 200 && sk_con_net_in_flight(net) > 0; i++) {
        sk_con_net_wait(net, -1, 50);
        sk_con_net_run(net);
    }
    ck_assert_uint_eq(sk_con_net_in_flight(net), 0);
}

START_TEST(net_daemon_down)
{
    struct got g[2];
    char err[256], url[64];
    memset(g, 0, sizeof(g));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", sk_test_free_port());
    struct sk_con_net *net = sk_con_net_new(url, "t", 2000, collect, g, err, sizeof(err));
    ck_assert_ptr_nonnull(net);
    struct sk_con_tag t = {.kind = 1, .id = 7};
    snprintf(t.text, sizeof(t.text), "kept");
    ck_assert_int_eq(sk_con_net_start(net, "GET", "/admin/v1/activities", NULL, &t, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(sk_con_net_in_flight(net), 1);
    ck_assert_int_eq(g[1].calls, 0); /* never answered from inside start */
    drain(net);
    ck_assert_int_eq(g[1].calls, 1);
    ck_assert_int_eq(g[1].status, 0);
    ck_assert_msg(g[1].transport[0] != '\0', "no reason given");
    ck_assert_int_eq(g[1].tag.id, 7);
    ck_assert_str_eq(g[1].tag.text, "kept");
    struct sk_con_answer a = {.status = 0, .transport = g[1].transport};
    char m[SK_CON_MSGLEN];
    ck_assert_int_eq(sk_con_classify(&a, m, sizeof(m)), SK_CON_UNREACHABLE);
    /* requests in flight at free are dropped without a callback */
    ck_assert_int_eq(sk_con_net_start(net, "GET", "/x", NULL, &t, err, sizeof(err)), SK_OK);
    sk_con_net_free(net);
    ck_assert_int_eq(g[1].calls, 1);
    char e[64];
    ck_assert_str_eq(sk_con_net_escape("01M8 A/B-1", e, sizeof(e)), "01M8%20A%2FB-1");
}
END_TEST

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
        ck_abort_msg("seckilld did not stop cleanly (status %d)", st);
    }
}

/* The real admin API through the console's network layer and model: the shapes the
 * console parses are the ones the daemon sends. */
START_TEST(net_real_daemon)
{
    enum { LIST, CREATE, STOCK, MISSING, PUBLISH, COUNT };
    struct got g[COUNT];
    char err[SK_CON_MSGLEN], path[96], *body = NULL;
    size_t bad;
    struct sk_con_form form;
    struct sk_con_model m;
    struct sk_con_activity act;
    memset(g, 0, sizeof(g));
    sk_con_model_init(&m);

    struct sk_con_net *net = sk_con_net_new(daemon_.admin_url, SK_TEST_ADMIN_TOKEN, 5000, collect, g, err, sizeof(err));
    ck_assert_ptr_nonnull(net);
    fill_good(&form);
    ck_assert_int_eq(sk_con_form_build(&form, sk_now_ms(), &body, &bad, err, sizeof(err)), SK_OK);
    struct sk_con_tag t = {.kind = CREATE};
    ck_assert_int_eq(sk_con_net_start(net, "POST", "/admin/v1/activities", body, &t, err, sizeof(err)), SK_OK);
    free(body);
    sk_con_form_free(&form);
    /* several requests in flight at once */
    t.kind = LIST;
    ck_assert_int_eq(sk_con_net_start(net, "GET", "/admin/v1/activities", NULL, &t, err, sizeof(err)), SK_OK);
    t.kind = MISSING;
    ck_assert_int_eq(sk_con_net_start(net, "GET", "/admin/v1/no-such-route", NULL, &t, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(sk_con_net_in_flight(net), 3);
    drain(net);
    ck_assert_int_eq(g[CREATE].status, 201);
    ck_assert_int_eq(sk_con_parse_activity(g[CREATE].body, strlen(g[CREATE].body), &act, err, sizeof(err)), SK_OK);
    ck_assert_str_eq(act.name, "Double 11 测试");
    ck_assert_int_eq(act.state, SK_CON_ACT_DRAFT);
    ck_assert_uint_eq(act.n_items, 2);
    ck_assert_str_eq(act.items[0].title, "秒杀手机");
    ck_assert_int_eq(act.items[0].seckill_price_cents, 99950);
    struct sk_con_answer a = answer(g[LIST].status, g[LIST].body);
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 1), SK_CON_OK);
    a = answer(g[MISSING].status, g[MISSING].body);
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STATS, &a, 1), SK_CON_UNAVAILABLE);

    /* publish now, then the live stock parses */
    t.kind = PUBLISH;
    snprintf(path, sizeof(path), "/admin/v1/activities/%llu/publish", (unsigned long long)act.id);
    ck_assert_int_eq(sk_con_net_start(net, "POST", path, NULL, &t, err, sizeof(err)), SK_OK);
    drain(net);
    ck_assert_int_eq(g[PUBLISH].status, 200);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) { /* the scheduler publishes within a tick */
        t.kind = STOCK;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu/stock", (unsigned long long)act.id);
        ck_assert_int_eq(sk_con_net_start(net, "GET", path, NULL, &t, err, sizeof(err)), SK_OK);
        drain(net);
        a = answer(g[STOCK].status, g[STOCK].body);
        ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_STOCK, &a, 1 + i), SK_CON_OK);
        ok = m.stock.n == 2 && m.stock.items[0].published;
        if (!ok)
            sk_test_sleep_ms(100);
    }
    ck_assert_msg(ok, "the activity was not published: %s", g[STOCK].body);
    ck_assert_int_eq(m.stock.activity_id, act.id);
    ck_assert_int_eq(m.stock.items[0].initial, 100);
    ck_assert_int_eq(m.stock.items[0].remaining, 100);
    sk_con_activity_free(&act);
    sk_con_net_free(net);

    /* a wrong token is told apart from everything else */
    memset(g, 0, sizeof(g));
    net = sk_con_net_new(daemon_.admin_url, "wrong-token-0123456789", 5000, collect, g, err, sizeof(err));
    ck_assert_ptr_nonnull(net);
    t.kind = LIST;
    ck_assert_int_eq(sk_con_net_start(net, "GET", "/admin/v1/activities", NULL, &t, err, sizeof(err)), SK_OK);
    drain(net);
    a = answer(g[LIST].status, g[LIST].body);
    ck_assert_int_eq(sk_con_model_apply(&m, SK_CON_RES_ACTIVITIES, &a, 100), SK_CON_UNAUTHORIZED);
    ck_assert_str_eq(m.res[SK_CON_RES_ACTIVITIES].err, "bad admin token (401): wrong admin token");
    ck_assert_int_eq(m.res[SK_CON_RES_ACTIVITIES].loaded, 1); /* the list from before stays */
    sk_con_net_free(net);
    sk_con_model_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console_model");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, money_format);
    tcase_add_test(tc, money_parse);
    tcase_add_test(tc, durations_and_countdowns);
    tcase_add_test(tc, times);
    tcase_add_test(tc, rates);
    tcase_add_test(tc, display_width);
    tcase_add_test(tc, fit_to_columns);
    tcase_add_test(tc, stock_bars);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_add_test(tc, classify_answers);
    tcase_add_test(tc, activities_parsed);
    tcase_add_test(tc, bad_answers_keep_old_data);
    tcase_add_test(tc, mangled_answers_never_crash);
    tcase_add_test(tc, unknown_state_is_shown_not_fatal);
    tcase_add_test(tc, stock_and_rates);
    tcase_add_test(tc, stats_and_missing_routes);
    tcase_add_test(tc, orders_and_time_left);
    tcase_add_test(tc, blacklist_parsed);
    tcase_add_test(tc, next_events_and_live_pick);
    suite_add_tcase(s, tc);

    tc = tcase_create("form");
    tcase_add_test(tc, field_editing);
    tcase_add_test(tc, form_builds_the_body);
    tcase_add_test(tc, form_validation);
    tcase_add_test(tc, form_items_and_focus);
    tcase_add_test(tc, form_edits_an_activity);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys_settings");
    tcase_add_test(tc, key_table);
    tcase_add_test(tc, help_bars);
    tcase_add_test(tc, list_cursor);
    tcase_add_test(tc, settings_yaml);
    tcase_add_test(tc, settings_precedence);
    suite_add_tcase(s, tc);

    tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, net_daemon_down);
    suite_add_tcase(s, tc);

    tc = tcase_create("daemon");
    tcase_add_unchecked_fixture(tc, start_daemon, stop_daemon);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, net_real_daemon);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    /* one process: the daemon started by the fixture is the tests' child */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
