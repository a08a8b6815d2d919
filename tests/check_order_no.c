/* Order numbers (core/order_no.c): shape, item id, time order, uniqueness. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <seckill/plugin.h>

#include "core/order_no.h"

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(shape)
{
    char no[SK_ORDER_NO_MAX + 1];
    uint64_t item = 0;
    ck_assert_int_eq(sk_order_no_new(1795600800123LL, 12, no), SK_OK);
    ck_assert_int_eq(strlen(no), SK_ULID_LEN + 3);
    ck_assert_str_eq(no + SK_ULID_LEN, "_12");
    ck_assert_int_eq(sk_order_no_parse(no, strlen(no), &item), SK_OK);
    ck_assert_int_eq(item, 12);
    /* the first 10 characters are the 48-bit millisecond clock (ULID layout),
     * computed independently (Python: the base32 digits of 1795600800123 << 80) */
    ck_assert_int_eq(strncmp(no, "01M892BPBV", 10), 0);

    ck_assert_int_eq(sk_order_no_new(1795600800123LL, UINT64_MAX, no), SK_OK);
    ck_assert_int_eq(strlen(no), SK_ORDER_NO_MAX);
    ck_assert_int_eq(sk_order_no_parse(no, strlen(no), &item), SK_OK);
    ck_assert(item == UINT64_MAX);
}
END_TEST

START_TEST(parse_refuses)
{
    static const char *bad[] = {
        "",
        "01M892BPBV",
        "01M892BPBVAAAAAAAAAAAAAAAA",        /* no item */
        "01M892BPBVAAAAAAAAAAAAAAAA_",       /* empty item */
        "01M892BPBVAAAAAAAAAAAAAAAA_0",      /* item 0 */
        "01M892BPBVAAAAAAAAAAAAAAAA_1x",
        "01M892BPBVAAAAAAAAAAAAAAAA-1",      /* the separator is _ */
        "01M892BPBVIIIIIIIIIIIIIIII_1",      /* I is not Crockford */
        "81M892BPBVAAAAAAAAAAAAAAAA_1",      /* more than 128 bits */
        "01M892BPBVAAAAAAAAAAAAAAAA_18446744073709551616", /* item overflows */
        "01M892BPBVAAAAAAAAAAAAAAAA_123456789012345678901",
        "../../etc/passwd",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t item = 77;
        ck_assert_msg(sk_order_no_parse(bad[i], strlen(bad[i]), &item) == SK_ERR, "accepted %s", bad[i]);
        ck_assert_int_eq(item, 77);
    }
    uint64_t item = 77;
    ck_assert_int_eq(sk_order_no_parse("01M892BPBVAAAAAAAAAAAAAAAA_5", 28, &item), SK_OK);
    ck_assert_int_eq(item, 5);
}
END_TEST

START_TEST(sorted_by_time_and_unique)
{
    enum { N = 20000 };
    char **nos = malloc(N * sizeof(*nos));
    ck_assert_ptr_nonnull(nos);
    for (int i = 0; i < N; i++) {
        nos[i] = malloc(SK_ORDER_NO_MAX + 1);
        ck_assert_int_eq(sk_order_no_new(1795600800000LL + i / 100, 1, nos[i]), SK_OK);
        if (i >= 100)
            ck_assert_int_lt(strncmp(nos[i - 100], nos[i], 10), 0); /* a later ms sorts later */
    }
    qsort(nos, N, sizeof(*nos), cmp);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(nos[i - 1], nos[i]);
    for (int i = 0; i < N; i++)
        free(nos[i]);
    free(nos);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("order_no");
    TCase *tc = tcase_create("ulid");
    tcase_add_test(tc, shape);
    tcase_add_test(tc, parse_refuses);
    tcase_add_test(tc, sorted_by_time_and_unique);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
