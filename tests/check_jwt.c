/* Buyer tokens (core/auth/jwt.c): HS256 against a published vector, expiry,
 * tampering, algorithm confusion and malformed input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <seckill/plugin.h>

#include "core/auth/jwt.h"

#define SECRET "test-jwt-secret-0123456789abcdef"
#define NOW 1795600800LL

static int verify(const char *secret, const char *token, uint64_t *uid, char *err)
{
    return sk_jwt_verify(secret, strlen(secret), token, strlen(token), NOW, uid, err, 128);
}

/* The example token of jwt.io / many JWT libraries' tests: HS256 over
 * {"sub":"1234567890","name":"John Doe","iat":1516239022} with "your-256-bit-secret". */
START_TEST(known_vector)
{
    static const char token[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                                "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                                "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    uint64_t uid = 7;
    char err[128];
    /* the signature is accepted; the token is refused only for having no exp */
    ck_assert_int_eq(verify("your-256-bit-secret", token, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token has no exp");
    ck_assert_int_eq(verify("another-secret", token, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
    ck_assert_int_eq(uid, 7);
}
END_TEST

START_TEST(mint_and_verify)
{
    char tok[512], err[128];
    uint64_t uid = 0;
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 424242, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(verify(SECRET, tok, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 424242);
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 1, NOW + 60, tok, 20), SK_ERR);
}
END_TEST

START_TEST(expired_and_wrong_secret)
{
    char tok[512], err[128];
    uint64_t uid = 0;
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 5, NOW, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(verify(SECRET, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token expired");
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 5, NOW + 10, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(verify("not-the-secret-0123456789abcdef", tok, &uid, err), SK_ERR);
    ck_assert_int_eq(uid, 0);
}
END_TEST

START_TEST(tampered_payload)
{
    char tok[512], other[512], err[128], forged[1024];
    uint64_t uid = 0;
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 5, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 6, NOW + 60, other, sizeof(other)), SK_OK);
    /* header and payload of user 6 with the signature of user 5 */
    char *sig5 = strrchr(tok, '.');
    char *sig6 = strrchr(other, '.');
    *sig6 = '\0';
    snprintf(forged, sizeof(forged), "%s%s", other, sig5);
    ck_assert_int_eq(verify(SECRET, forged, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
}
END_TEST

START_TEST(refuses_other_algorithms_and_junk)
{
    static const char *bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        /* {"alg":"none","typ":"JWT"} . {"sub":"1","exp":9999999999} . (no signature) */
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
        /* {"alg":"HS512"} */
        "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t uid = 99;
        char err[128];
        ck_assert_msg(verify(SECRET, bad[i], &uid, err) == SK_ERR, "accepted %s", bad[i]);
        ck_assert_int_eq(uid, 99);
    }
    char huge[SK_JWT_MAX_LEN + 10];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    uint64_t uid = 99;
    char err[128];
    ck_assert_int_eq(verify(SECRET, huge, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token missing or too long");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("hs256");
    tcase_add_test(tc, known_vector);
    tcase_add_test(tc, mint_and_verify);
    tcase_add_test(tc, expired_and_wrong_secret);
    tcase_add_test(tc, tampered_payload);
    tcase_add_test(tc, refuses_other_algorithms_and_junk);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
