/* Order numbers (core/order_no.c): shape, time order, uniqueness. */
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
    char no[SK_ORDER_NO_LEN + 1];
    ck_assert_int_eq(sk_order_no_new(1795600800123LL, no), SK_OK);
    ck_assert_int_eq(strlen(no), SK_ORDER_NO_LEN);
    ck_assert(sk_order_no_valid(no, strlen(no)));
    /* the first 10 characters are the 48-bit millisecond clock (ULID layout),
     * computed independently (Python: the base32 digits of 1795600800123 << 80) */
    ck_assert_int_eq(strncmp(no, "01M892BPBV", 10), 0);
    ck_assert(!sk_order_no_valid("01M892BPBV", 10));
    ck_assert(!sk_order_no_valid("01KAWFDXMVIIIIIIIIIIIIIIII", 26)); /* I is not Crockford */
    ck_assert(!sk_order_no_valid("81KAWFDXMV0000000000000000", 26)); /* > 128 bits */
}
END_TEST

START_TEST(sorted_by_time_and_unique)
{
    enum { N = 20000 };
    char **nos = malloc(N * sizeof(*nos));
    ck_assert_ptr_nonnull(nos);
    for (int i = 0; i < N; i++) {
        nos[i] = malloc(SK_ORDER_NO_LEN + 1);
        ck_assert_int_eq(sk_order_no_new(1795600800000LL + i / 100, nos[i]), SK_OK);
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
    tcase_add_test(tc, sorted_by_time_and_unique);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
