/* Buyer tokens (core/auth/jwt.c): HS256 against a published vector, expiry,
 * tampering, algorithm confusion and malformed input; the per-loop verifier gives
 * exactly sk_jwt_verify's answers, stays correct over many tokens in a row, and its
 * header cache never changes an outcome. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seckill/plugin.h>

#include "core/auth/jwt.h"

#define SECRET       "test-jwt-secret-0123456789abcdef"
#define OTHER_SECRET "not-the-secret-0123456789abcdef"
#define NOW          1795600800LL
#define STD_HEADER   "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* The example token of jwt.io / many JWT libraries' tests: HS256 over
 * {"sub":"1234567890","name":"John Doe","iat":1516239022} with "your-256-bit-secret". */
#define JWTIO_TOKEN                                                                                                    \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                                                            \
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."                                      \
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

static int verify(const char *secret, const char *token, uint64_t *uid, char *err)
{
    return sk_jwt_verify(secret, strlen(secret), token, strlen(token), NOW, uid, err, 128);
}

static struct sk_jwt_verifier *new_verifier(const char *secret)
{
    struct sk_jwt_verifier *v = NULL;
    char err[128] = "";
    ck_assert_msg(sk_jwt_verifier_new(secret, strlen(secret), &v, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_ptr_nonnull(v);
    return v;
}

static int vcheck(struct sk_jwt_verifier *v, const char *token, uint64_t *uid, char *err)
{
    return sk_jwt_verifier_check(v, token, strlen(token), NOW, uid, err, 128);
}

static struct sk_jwt_verifier_stats stats_of(const struct sk_jwt_verifier *v)
{
    struct sk_jwt_verifier_stats s;
    sk_jwt_verifier_get_stats(v, &s);
    return s;
}

/* base64url without padding through OpenSSL's encoder, so that the tokens made
 * here do not depend on the code under test. */
static void b64url(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    ck_assert_uint_lt(4 * ((len + 2) / 3), outlen);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    ck_assert_int_ge(n, 0);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
}

/* header.payload signed with secret by OpenSSL's one-shot HMAC-SHA256; secret NULL
 * leaves the signature segment empty. */
static void make_token(const char *secret, const char *header, const char *payload, char *out, size_t outlen)
{
    char h[1024], p[2048], s[64];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    b64url((const unsigned char *)header, strlen(header), h, sizeof(h));
    b64url((const unsigned char *)payload, strlen(payload), p, sizeof(p));
    int n = snprintf(out, outlen, "%s.%s.", h, p);
    ck_assert(n > 0 && (size_t)n < outlen);
    if (secret == NULL)
        return;
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, (size_t)n - 1, mac, &mac_len));
    ck_assert_uint_eq(mac_len, 32);
    b64url(mac, mac_len, s, sizeof(s));
    ck_assert_uint_lt((size_t)n + strlen(s), outlen);
    strcat(out, s);
}

/* A token with the standard header and {"sub":"<uid>","exp":NOW+60}. */
static void make_user_token(const char *secret, uint64_t uid, char *out, size_t outlen)
{
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"%llu\",\"exp\":%lld}", (unsigned long long)uid, NOW + 60);
    make_token(secret, STD_HEADER, payload, out, outlen);
}

/* header.payload of `who` with the signature segment of `sig_of`. */
static void graft(const char *who, const char *sig_of, char *out, size_t outlen)
{
    const char *dot = strrchr(who, '.');
    int n = snprintf(out, outlen, "%.*s%s", (int)(dot - who), who, strrchr(sig_of, '.'));
    ck_assert(n > 0 && (size_t)n < outlen);
}

START_TEST(known_vector)
{
    uint64_t uid = 7;
    char err[128];
    /* the signature is accepted; the token is refused only for having no exp */
    ck_assert_int_eq(verify("your-256-bit-secret", JWTIO_TOKEN, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token has no exp");
    ck_assert_int_eq(verify("another-secret", JWTIO_TOKEN, &uid, err), SK_ERR);
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
    ck_assert_int_eq(verify(OTHER_SECRET, tok, &uid, err), SK_ERR);
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
    graft(other, tok, forged, sizeof(forged));
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

/* One case of the equivalence table: a token (made with secret `signer`, header and
 * payload JSON, or given literally) and what checking it with SECRET must give. */
struct vcase {
    const char *name;
    const char *literal; /* the whole token, or NULL to make one from the fields below */
    const char *signer;  /* NULL: empty signature segment */
    const char *header;
    const char *payload;
    int rc;
    uint64_t uid;    /* on SK_OK */
    const char *err; /* on SK_ERR */
};

#define EXP_OK   "\"exp\":1795600860"
#define EXP_PAST "\"exp\":1795600800"

static const struct vcase cases[] = {
    {"minted-like", NULL, SECRET, STD_HEADER, "{\"sub\":\"424242\"," EXP_OK "}", SK_OK, 424242, NULL},
    {"expired (exp == now)", NULL, SECRET, STD_HEADER, "{\"sub\":\"5\"," EXP_PAST "}", SK_ERR, 0, "token expired"},
    {"nbf in the future", NULL, SECRET, STD_HEADER, "{\"sub\":\"8\"," EXP_OK ",\"nbf\":1795600810}", SK_ERR, 0,
     "token not valid yet (nbf)"},
    {"nbf now", NULL, SECRET, STD_HEADER, "{\"sub\":\"8\"," EXP_OK ",\"nbf\":1795600800}", SK_OK, 8, NULL},
    {"nbf not a number", NULL, SECRET, STD_HEADER, "{\"sub\":\"8\"," EXP_OK ",\"nbf\":\"soon\"}", SK_ERR, 0,
     "token not valid yet (nbf)"},
    {"missing exp", NULL, SECRET, STD_HEADER, "{\"sub\":\"9\"}", SK_ERR, 0, "token has no exp"},
    {"exp as a string", NULL, SECRET, STD_HEADER, "{\"sub\":\"9\",\"exp\":\"1795600860\"}", SK_ERR, 0,
     "token has no exp"},
    {"alg none unsigned", NULL, NULL, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token algorithm must be HS256"},
    {"alg none but signed", NULL, SECRET, "{\"alg\":\"none\"}", "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token algorithm must be HS256"},
    {"alg HS512", NULL, SECRET, "{\"alg\":\"HS512\"}", "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token algorithm must be HS256"},
    {"alg lower case", NULL, SECRET, "{\"alg\":\"hs256\"}", "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token algorithm must be HS256"},
    {"header not JSON", NULL, SECRET, "HS256", "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token algorithm must be HS256"},
    {"header with kid", NULL, SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}",
     "{\"sub\":\"31\"," EXP_OK "}", SK_OK, 31, NULL},
    {"bad signature", NULL, OTHER_SECRET, STD_HEADER, "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token signature does not match"},
    {"empty signature", NULL, NULL, STD_HEADER, "{\"sub\":\"1\"," EXP_OK "}", SK_ERR, 0,
     "token signature does not match"},
    {"short signature", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.AAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, NULL,
     SK_ERR, 0, "token signature does not match"},
    {"payload not an object", NULL, SECRET, STD_HEADER, "[1,2]", SK_ERR, 0, "token payload is not a JSON object"},
    {"payload not JSON", NULL, SECRET, STD_HEADER, "sub=1", SK_ERR, 0, "token payload is not a JSON object"},
    {"sub as a number", NULL, SECRET, STD_HEADER, "{\"sub\":78," EXP_OK "}", SK_OK, 78, NULL},
    {"sub as a string", NULL, SECRET, STD_HEADER, "{\"sub\":\"77\"," EXP_OK "}", SK_OK, 77, NULL},
    {"sub of 19 digits", NULL, SECRET, STD_HEADER, "{\"sub\":\"9999999999999999999\"," EXP_OK "}", SK_OK,
     9999999999999999999ULL, NULL},
    {"sub of 20 digits", NULL, SECRET, STD_HEADER, "{\"sub\":\"18446744073709551615\"," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub zero string", NULL, SECRET, STD_HEADER, "{\"sub\":\"0\"," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub zero", NULL, SECRET, STD_HEADER, "{\"sub\":0," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub negative", NULL, SECRET, STD_HEADER, "{\"sub\":-5," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub not digits", NULL, SECRET, STD_HEADER, "{\"sub\":\"12a\"," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub empty", NULL, SECRET, STD_HEADER, "{\"sub\":\"\"," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub missing", NULL, SECRET, STD_HEADER, "{" EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"sub fractional", NULL, SECRET, STD_HEADER, "{\"sub\":1.5," EXP_OK "}", SK_ERR, 0,
     "token sub must be a positive integer user id"},
    {"jwt.io vector", JWTIO_TOKEN, NULL, NULL, NULL, SK_ERR, 0, "token signature does not match"},
    {"bad base64 everywhere", "!!!.###.$$$", NULL, NULL, NULL, SK_ERR, 0, "token is not valid base64url"},
    {"bad base64 payload", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e*J9.AAAA", NULL, NULL, NULL, SK_ERR, 0,
     "token is not valid base64url"},
    {"bad base64 signature", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.A+A/", NULL, NULL, NULL, SK_ERR, 0,
     "token is not valid base64url"},
    {"empty header", ".eyJzdWIiOiIxIn0.AAAA", NULL, NULL, NULL, SK_ERR, 0, "token is not valid base64url"},
    {"empty payload", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..AAAA", NULL, NULL, NULL, SK_ERR, 0,
     "token is not valid base64url"},
    {"empty", "", NULL, NULL, NULL, SK_ERR, 0, "token missing or too long"},
    {"one segment", "abc", NULL, NULL, NULL, SK_ERR, 0, "token is not a JWT (header.payload.signature)"},
    {"two segments", "a.b", NULL, NULL, NULL, SK_ERR, 0, "token is not a JWT (header.payload.signature)"},
    {"four segments", "a.b.c.d", NULL, NULL, NULL, SK_ERR, 0, "token is not a JWT (header.payload.signature)"},
};

static void case_token(const struct vcase *c, char *out, size_t outlen)
{
    if (c->literal != NULL) {
        ck_assert_uint_lt(strlen(c->literal), outlen);
        strcpy(out, c->literal);
    } else {
        make_token(c->signer, c->header, c->payload, out, outlen);
    }
}

/* Every case through sk_jwt_verify, a fresh verifier and one verifier shared by
 * all cases in a row (so its header cache holds whatever came before): the same
 * answer, the expected one, and *user_id untouched on refusal. */
START_TEST(verifier_matches_verify)
{
    struct sk_jwt_verifier *shared = new_verifier(SECRET);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct vcase *c = &cases[i];
        char tok[4096], e1[128] = "", e2[128] = "", e3[128] = "";
        uint64_t u1 = 12345, u2 = 12345, u3 = 12345;
        case_token(c, tok, sizeof(tok));
        struct sk_jwt_verifier *fresh = new_verifier(SECRET);
        int r1 = verify(SECRET, tok, &u1, e1);
        int r2 = vcheck(fresh, tok, &u2, e2);
        int r3 = vcheck(shared, tok, &u3, e3);
        sk_jwt_verifier_free(fresh);
        ck_assert_msg(r1 == c->rc, "%s: sk_jwt_verify gave %d (%s)", c->name, r1, e1);
        ck_assert_msg(r2 == c->rc, "%s: fresh verifier gave %d (%s)", c->name, r2, e2);
        ck_assert_msg(r3 == c->rc, "%s: shared verifier gave %d (%s)", c->name, r3, e3);
        if (c->rc == SK_OK) {
            ck_assert_msg(u1 == c->uid && u2 == c->uid && u3 == c->uid, "%s: user ids %llu %llu %llu", c->name,
                          (unsigned long long)u1, (unsigned long long)u2, (unsigned long long)u3);
        } else {
            ck_assert_msg(strcmp(e1, c->err) == 0, "%s: sk_jwt_verify said \"%s\"", c->name, e1);
            ck_assert_msg(strcmp(e2, c->err) == 0, "%s: fresh verifier said \"%s\"", c->name, e2);
            ck_assert_msg(strcmp(e3, c->err) == 0, "%s: shared verifier said \"%s\"", c->name, e3);
            ck_assert_msg(u1 == 12345 && u2 == 12345 && u3 == 12345, "%s: user id changed on refusal", c->name);
        }
    }
    /* the table has consecutive tokens with the standard header: the cache was used */
    ck_assert_uint_gt(stats_of(shared).header_hits, 10);
    sk_jwt_verifier_free(shared);

    /* the jwt.io vector against its own secret, through a verifier */
    struct sk_jwt_verifier *v = new_verifier("your-256-bit-secret");
    uint64_t uid = 7;
    char err[128];
    ck_assert_int_eq(vcheck(v, JWTIO_TOKEN, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token has no exp");
    ck_assert_int_eq(uid, 7);
    sk_jwt_verifier_free(v);
}
END_TEST

/* The reused HMAC context is re-initialised correctly: 300 tokens in a row, each
 * giving its own user, a forged one every seventh that is refused and does not
 * disturb the next; tokens made by sk_jwt_mint and by OpenSSL directly alike. */
START_TEST(many_tokens_in_a_row)
{
    struct sk_jwt_verifier *v = new_verifier(SECRET);
    char prev[512] = "", tok[512], forged[1024], err[128];
    unsigned checked = 0, forged_n = 0;
    for (uint64_t u = 1000; u < 1300; u++) {
        uint64_t uid = 0;
        if (u % 2 == 0)
            ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), u, NOW + 60, tok, sizeof(tok)), SK_OK);
        else
            make_user_token(SECRET, u, tok, sizeof(tok));
        if (u % 7 == 0 && prev[0] != '\0') {
            /* user u's header and payload with the previous user's signature */
            uint64_t kept = 4242;
            graft(tok, prev, forged, sizeof(forged));
            ck_assert_int_eq(vcheck(v, forged, &kept, err), SK_ERR);
            ck_assert_str_eq(err, "token signature does not match");
            ck_assert_int_eq(kept, 4242);
            checked++;
            forged_n++;
        }
        ck_assert_msg(vcheck(v, tok, &uid, err) == SK_OK, "user %llu: %s", (unsigned long long)u, err);
        ck_assert_int_eq(uid, u);
        checked++;
        strcpy(prev, tok);
    }
    ck_assert_uint_eq(forged_n, 43); /* 1001, 1008, …, 1295 */
    /* sk_jwt_mint and make_token write the same header: parsed once, then remembered */
    struct sk_jwt_verifier_stats s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 1);
    ck_assert_uint_eq(s.header_hits, checked - 1);
    sk_jwt_verifier_free(v);
}
END_TEST

/* A good header is remembered; another header is parsed (and remembered only when
 * it is HS256); the cache never spares the signature. */
START_TEST(header_cache)
{
    struct sk_jwt_verifier *v = new_verifier(SECRET);
    char a[512], a2[512], none[512], kid[512], forged[1024], err[128];
    uint64_t uid = 0;
    struct sk_jwt_verifier_stats s = stats_of(v);
    ck_assert_uint_eq(s.header_hits, 0);
    ck_assert_uint_eq(s.header_parses, 0);

    make_user_token(SECRET, 11, a, sizeof(a));
    make_user_token(SECRET, 12, a2, sizeof(a2));
    make_token(NULL, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"13\",\"exp\":9999999999}", none, sizeof(none));
    make_token(SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"2024-key\"}",
               "{\"sub\":\"14\",\"exp\":9999999999}", kid, sizeof(kid));

    ck_assert_int_eq(vcheck(v, a, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 11);
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 1);
    ck_assert_uint_eq(s.header_hits, 0);

    /* alg none: parsed, refused, and not remembered */
    uid = 0;
    ck_assert_int_eq(vcheck(v, none, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token algorithm must be HS256");
    ck_assert_int_eq(uid, 0);
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 2);
    ck_assert_uint_eq(s.header_hits, 0);
    /* twice: still parsed, still refused */
    ck_assert_int_eq(vcheck(v, none, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token algorithm must be HS256");
    ck_assert_uint_eq(stats_of(v).header_parses, 3);

    /* the first header again: still remembered */
    ck_assert_int_eq(vcheck(v, a2, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 12);
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 3);
    ck_assert_uint_eq(s.header_hits, 1);

    /* a remembered header does not spare the signature: a's header with a2's payload
     * and a's signature */
    char expired[512];
    graft(a2, a, forged, sizeof(forged));
    ck_assert_int_eq(vcheck(v, forged, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
    ck_assert_uint_eq(stats_of(v).header_hits, 2);
    /* nor the rest of the token's checks */
    make_token(SECRET, STD_HEADER, "{\"sub\":\"15\"," EXP_PAST "}", expired, sizeof(expired));
    ck_assert_int_eq(vcheck(v, expired, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token expired");
    ck_assert_uint_eq(stats_of(v).header_hits, 3);
    ck_assert_int_eq(uid, 12);

    /* HS256 with a kid: parsed, accepted, and now the remembered one */
    ck_assert_int_eq(vcheck(v, kid, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 14);
    ck_assert_uint_eq(stats_of(v).header_parses, 4);
    ck_assert_int_eq(vcheck(v, kid, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 14);
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 4);
    ck_assert_uint_eq(s.header_hits, 4);

    /* back to the first header: parsed again (kid replaced it), accepted, remembered */
    ck_assert_int_eq(vcheck(v, a, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 11);
    ck_assert_int_eq(vcheck(v, a2, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 12);
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 5);
    ck_assert_uint_eq(s.header_hits, 5);
    sk_jwt_verifier_free(v);
}
END_TEST

START_TEST(other_secret_refuses)
{
    struct sk_jwt_verifier *mine = new_verifier(SECRET), *other = new_verifier(OTHER_SECRET);
    char tok[512], err[128];
    uint64_t uid = 3;
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 21, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(vcheck(other, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
    ck_assert_int_eq(uid, 3);
    ck_assert_int_eq(vcheck(mine, tok, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 21);
    /* and the other way round: each verifier keeps its own key */
    ck_assert_int_eq(sk_jwt_mint(OTHER_SECRET, strlen(OTHER_SECRET), 22, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(vcheck(mine, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
    ck_assert_int_eq(uid, 21);
    ck_assert_int_eq(vcheck(other, tok, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 22);
    /* a secret that differs in its last byte only */
    struct sk_jwt_verifier *near = new_verifier("test-jwt-secret-0123456789abcdeF");
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 23, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(vcheck(near, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token signature does not match");
    ck_assert_int_eq(uid, 22);
    sk_jwt_verifier_free(mine);
    sk_jwt_verifier_free(other);
    sk_jwt_verifier_free(near);
}
END_TEST

/* A header JSON of hlen bytes (HS256 plus a kid that pads it). */
static void padded_header(size_t hlen, char *out, size_t outlen)
{
    static const char head[] = "{\"alg\":\"HS256\",\"kid\":\"";
    size_t fixed = sizeof(head) - 1 + 2;
    ck_assert_uint_lt(hlen, outlen);
    ck_assert_uint_gt(hlen, fixed);
    memcpy(out, head, sizeof(head) - 1);
    memset(out + sizeof(head) - 1, 'k', hlen - fixed);
    memcpy(out + hlen - 2, "\"}", 3);
}

/* Header segments around SK_JWT_HEADER_CACHE_MAX: one of exactly 256 characters is
 * remembered, one of 260 is checked every time and still accepted. */
START_TEST(long_header_not_cached)
{
    struct sk_jwt_verifier *v = new_verifier(SECRET);
    char header[256], tok[1024], err[128];
    uint64_t uid = 0;

    /* 192 bytes of JSON -> 256 base64url characters */
    padded_header(192, header, sizeof(header));
    make_token(SECRET, header, "{\"sub\":\"41\",\"exp\":9999999999}", tok, sizeof(tok));
    ck_assert_int_eq(strchr(tok, '.') - tok, SK_JWT_HEADER_CACHE_MAX);
    for (int i = 0; i < 3; i++) {
        uid = 0;
        ck_assert_msg(vcheck(v, tok, &uid, err) == SK_OK, "%s", err);
        ck_assert_int_eq(uid, 41);
    }
    struct sk_jwt_verifier_stats s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 1);
    ck_assert_uint_eq(s.header_hits, 2);

    /* 195 bytes -> 260 characters: never remembered, the 256-character one stays */
    padded_header(195, header, sizeof(header));
    make_token(SECRET, header, "{\"sub\":\"42\",\"exp\":9999999999}", tok, sizeof(tok));
    ck_assert_int_eq(strchr(tok, '.') - tok, 260);
    for (int i = 0; i < 3; i++) {
        uid = 0;
        ck_assert_msg(vcheck(v, tok, &uid, err) == SK_OK, "%s", err);
        ck_assert_int_eq(uid, 42);
    }
    s = stats_of(v);
    ck_assert_uint_eq(s.header_parses, 4);
    ck_assert_uint_eq(s.header_hits, 2);
    /* and a long one is still checked: the same with alg none is refused each time */
    char none[256];
    memcpy(none, header, sizeof(none));
    memcpy(none + 8, "none ", 5); /* {"alg":"none ","kid"… */
    make_token(SECRET, none, "{\"sub\":\"43\",\"exp\":9999999999}", tok, sizeof(tok));
    ck_assert_int_eq(vcheck(v, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token algorithm must be HS256");
    ck_assert_int_eq(uid, 42);
    /* a header too long to decode at all (over 255 bytes of JSON) is refused as today */
    char big[400];
    padded_header(300, big, sizeof(big));
    make_token(SECRET, big, "{\"sub\":\"44\",\"exp\":9999999999}", tok, sizeof(tok));
    ck_assert_int_eq(vcheck(v, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token is not valid base64url");
    ck_assert_int_eq(verify(SECRET, tok, &uid, err), SK_ERR);
    ck_assert_str_eq(err, "token is not valid base64url");
    ck_assert_int_eq(uid, 42);
    sk_jwt_verifier_free(v);
}
END_TEST

START_TEST(verifier_new_bad_input)
{
    struct sk_jwt_verifier *sentinel = (struct sk_jwt_verifier *)&sentinel, *v = sentinel;
    char err[128] = "";
    ck_assert_int_eq(sk_jwt_verifier_new(NULL, 16, &v, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "JWT secret is missing or empty");
    ck_assert_ptr_eq(v, sentinel);
    err[0] = '\0';
    ck_assert_int_eq(sk_jwt_verifier_new(NULL, 0, &v, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "JWT secret is missing or empty");
    ck_assert_ptr_eq(v, sentinel);
    err[0] = '\0';
    ck_assert_int_eq(sk_jwt_verifier_new("", 0, &v, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "JWT secret is missing or empty");
    ck_assert_ptr_eq(v, sentinel);
    err[0] = '\0';
    ck_assert_int_eq(sk_jwt_verifier_new(SECRET, 0, &v, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "JWT secret is missing or empty");
    ck_assert_ptr_eq(v, sentinel);

    /* a NULL verifier is refused, not dereferenced; free(NULL) is fine */
    uint64_t uid = 5;
    ck_assert_int_eq(sk_jwt_verifier_check(NULL, "a.b.c", 5, NOW, &uid, err, sizeof(err)), SK_ERR);
    ck_assert_str_eq(err, "no JWT verifier");
    ck_assert_int_eq(uid, 5);
    sk_jwt_verifier_free(NULL);

    /* the secret is copied: the caller's buffer may change afterwards */
    char secret[] = SECRET, tok[512];
    v = NULL;
    ck_assert_int_eq(sk_jwt_verifier_new(secret, strlen(secret), &v, err, sizeof(err)), SK_OK);
    memset(secret, 'x', strlen(secret));
    ck_assert_int_eq(sk_jwt_mint(SECRET, strlen(SECRET), 61, NOW + 60, tok, sizeof(tok)), SK_OK);
    ck_assert_int_eq(vcheck(v, tok, &uid, err), SK_OK);
    ck_assert_int_eq(uid, 61);
    sk_jwt_verifier_free(v);
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
    TCase *tv = tcase_create("verifier");
    tcase_add_test(tv, verifier_matches_verify);
    tcase_add_test(tv, many_tokens_in_a_row);
    tcase_add_test(tv, header_cache);
    tcase_add_test(tv, other_secret_refuses);
    tcase_add_test(tv, long_header_not_cached);
    tcase_add_test(tv, verifier_new_bad_input);
    suite_add_tcase(s, tv);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
