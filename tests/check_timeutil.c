/* RFC 3339 parsing and formatting (core/timeutil.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <seckill/plugin.h>

#include "core/timeutil.h"

START_TEST(parse_utc)
{
    int64_t ms = 0;
    ck_assert_int_eq(sk_time_parse("1970-01-01T00:00:00Z", &ms), SK_OK);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(sk_time_parse("2026-11-25T10:00:00Z", &ms), SK_OK);
    ck_assert_int_eq(ms, 1795600800000LL);
    ck_assert_int_eq(sk_time_parse("2026-11-25T10:00:00.123Z", &ms), SK_OK);
    ck_assert_int_eq(ms, 1795600800123LL);
    ck_assert_int_eq(sk_time_parse("2026-11-25T10:00:00.5Z", &ms), SK_OK);
    ck_assert_int_eq(ms, 1795600800500LL);
    ck_assert_int_eq(sk_time_parse("2024-02-29T23:59:59Z", &ms), SK_OK);
}
END_TEST

START_TEST(parse_offset)
{
    int64_t a = 0, b = 0;
    ck_assert_int_eq(sk_time_parse("2026-11-25T18:00:00+08:00", &a), SK_OK);
    ck_assert_int_eq(sk_time_parse("2026-11-25T10:00:00Z", &b), SK_OK);
    ck_assert_int_eq(a, b);
    ck_assert_int_eq(sk_time_parse("2026-11-25T05:00:00-05:00", &a), SK_OK);
    ck_assert_int_eq(a, b);
}
END_TEST

START_TEST(parse_rejects)
{
    static const char *bad[] = {"", "2026-11-25", "2026-11-25T10:00:00", "2026-13-01T00:00:00Z",
                                "2026-02-29T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T10:60:00Z",
                                "2026-11-25T10:00:00ZZ", "2026-11-25T10:00:00.Z", "26-11-25T10:00:00Z",
                                "2026-11-25T10:00:00+8:00", "abc", "1969-12-31T23:59:59Z", "2026-11-00T10:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        ck_assert_msg(sk_time_parse(bad[i], &ms) == SK_ERR, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(ms, 42);
    }
    int64_t ms = 42;
    ck_assert_int_eq(sk_time_parse(NULL, &ms), SK_ERR);
}
END_TEST

START_TEST(format_round_trip)
{
    char buf[SK_TIME_TEXT_LEN];
    ck_assert_str_eq(sk_time_format(1795600800000LL, buf), "2026-11-25T10:00:00Z");
    ck_assert_str_eq(sk_time_format(1795600800123LL, buf), "2026-11-25T10:00:00.123Z");
    for (int64_t ms = 0; ms < 4000000000000LL; ms += 123456789011LL) {
        int64_t back = -1;
        ck_assert_int_eq(sk_time_parse(sk_time_format(ms, buf), &back), SK_OK);
        ck_assert_int_eq(back, ms);
    }
}
END_TEST

START_TEST(clocks_move)
{
    int64_t now = sk_now_ms();
    ck_assert_int_gt(now, 1700000000000LL);
    int64_t m1 = sk_mono_ms(), m2 = sk_mono_ms();
    ck_assert_int_ge(m2, m1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("rfc3339");
    tcase_add_test(tc, parse_utc);
    tcase_add_test(tc, parse_offset);
    tcase_add_test(tc, parse_rejects);
    tcase_add_test(tc, format_round_trip);
    tcase_add_test(tc, clocks_move);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
