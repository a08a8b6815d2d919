/* JWT HS256; see jwt.h. */
#include "jwt.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <seckill/plugin.h>

#define SHA256_LEN 32

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; returns the length written or -1 if out is short. */
static int b64url_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t n = len - i;
        if (n > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        size_t chars = n >= 3 ? 4 : n + 1;
        if (o + chars >= outlen)
            return -1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = b64url[(v >> (18 - 6 * c)) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64url_value(char c)
{
    const char *p = memchr(b64url, c, 64);
    return p ? (int)(p - b64url) : -1;
}

/* Decode base64url (no padding) into out; returns the length or -1 on bad input. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
    size_t o = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t n = len - i < 4 ? len - i : 4;
        for (size_t c = 0; c < 4; c++) {
            int d = 0;
            if (c < n && (d = b64url_value(in[i + c])) < 0)
                return -1;
            v = (v << 6) | (uint32_t)d;
        }
        size_t bytes = n - 1;
        if (o + bytes > outlen)
            return -1;
        for (size_t b = 0; b < bytes; b++)
            out[o++] = (unsigned char)(v >> (16 - 8 * b));
    }
    return (int)o;
}

static int hs256(const char *secret, size_t secret_len, const char *data, size_t len, unsigned char *mac)
{
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)data, len, mac, &mac_len) == NULL ||
        mac_len != SHA256_LEN)
        return SK_ERR;
    return SK_OK;
}

struct sk_jwt_verifier {
    EVP_MAC *mac;      /* owned */
    EVP_MAC_CTX *ctx;  /* owned; keyed with the secret and SHA256 once */
    size_t header_len; /* 0: nothing remembered */
    char header[SK_JWT_HEADER_CACHE_MAX];
    struct sk_jwt_verifier_stats stats;
};

/* One HMAC-SHA256 of data into mac (SHA256_LEN bytes): the only step in which the
 * one-off check and a verifier differ. SK_OK or SK_ERR. */
typedef int (*mac_step_fn)(void *arg, const char *data, size_t len, unsigned char *mac);

struct oneshot_key {
    const char *secret; /* borrowed from sk_jwt_verify's caller */
    size_t len;
};

static int oneshot_mac(void *arg, const char *data, size_t len, unsigned char *mac)
{
    const struct oneshot_key *k = arg;
    return hs256(k->secret, k->len, data, len, mac);
}

/* Re-init with a NULL key keeps the key and digest set in sk_jwt_verifier_new. */
static int verifier_mac(void *arg, const char *data, size_t len, unsigned char *mac)
{
    struct sk_jwt_verifier *v = arg;
    size_t mac_len = 0;
    int rc = SK_ERR;
    if (EVP_MAC_init(v->ctx, NULL, 0, NULL) != 1)
        goto out;
    if (EVP_MAC_update(v->ctx, (const unsigned char *)data, len) != 1)
        goto out;
    if (EVP_MAC_final(v->ctx, mac, &mac_len, SHA256_LEN) != 1 || mac_len != SHA256_LEN)
        goto out;
    rc = SK_OK;
out:
    if (rc != SK_OK)
        ERR_clear_error(); /* the queue is per thread: do not let a loop's grow */
    return rc;
}

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return SK_ERR;
}

/* why, followed by OpenSSL's first queued reason when it has one. */
static int ossl_fail(char *err, size_t errlen, const char *why)
{
    char reason[160];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(err, errlen, "%s: %s", why, reason);
    } else {
        snprintf(err, errlen, "%s", why);
    }
    ERR_clear_error();
    return SK_ERR;
}

/* sub as a positive integer, from a number or a string of digits. */
static int parse_sub(const json_t *sub, uint64_t *out)
{
    if (json_is_integer(sub) && json_integer_value(sub) > 0) {
        *out = (uint64_t)json_integer_value(sub);
        return SK_OK;
    }
    if (!json_is_string(sub))
        return SK_ERR;
    const char *s = json_string_value(sub);
    size_t len = json_string_length(sub);
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return SK_ERR;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SK_ERR;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0)
        return SK_ERR;
    *out = v;
    return SK_OK;
}

/* The whole check, shared by sk_jwt_verify (cache NULL) and sk_jwt_verifier_check.
 * mac(mac_arg, …) computes the signature; cache, when not NULL, remembers the last
 * header segment found to be HS256. Whether a header passes depends on its bytes
 * only, so a byte-identical segment may skip the decode and parse. */
static int check_token(struct sk_jwt_verifier *cache, mac_step_fn mac_step, void *mac_arg, const char *token,
                       size_t len, int64_t now_s, uint64_t *user_id, char *err, size_t errlen)
{
    unsigned char header[256], payload[1536], sig[64], mac[SHA256_LEN];
    json_t *h = NULL, *p = NULL;
    int rc = SK_ERR;

    if (len == 0 || len > SK_JWT_MAX_LEN)
        return fail(err, errlen, "token missing or too long");
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return fail(err, errlen, "token is not a JWT (header.payload.signature)");
    size_t hseg = (size_t)(dot1 - token);
    /* header_len > 0 always: an empty segment is never remembered (and is refused) */
    int cached =
        cache != NULL && cache->header_len > 0 && cache->header_len == hseg && memcmp(cache->header, token, hseg) == 0;
    /* a remembered segment decoded to a non-empty header once: 1 stands for that */
    int hlen = cached ? 1 : b64url_decode(token, hseg, header, sizeof(header));
    int plen = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload));
    int slen = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
    if (hlen <= 0 || plen <= 0 || slen < 0)
        return fail(err, errlen, "token is not valid base64url");

    if (cached) {
        cache->stats.header_hits++;
    } else {
        h = json_loadb((const char *)header, (size_t)hlen, 0, NULL);
        json_t *alg = json_object_get(h, "alg");
        if (cache != NULL)
            cache->stats.header_parses++;
        if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
            fail(err, errlen, "token algorithm must be HS256");
            goto out;
        }
        if (cache != NULL && hseg <= sizeof(cache->header)) {
            memcpy(cache->header, token, hseg);
            cache->header_len = hseg;
        }
    }
    /* The signature before anything in the payload is believed. */
    if (mac_step(mac_arg, token, (size_t)(dot2 - token), mac) != SK_OK) {
        fail(err, errlen, "cannot compute HMAC");
        goto out;
    }
    if (slen != SHA256_LEN || CRYPTO_memcmp(mac, sig, SHA256_LEN) != 0) {
        fail(err, errlen, "token signature does not match");
        goto out;
    }
    p = json_loadb((const char *)payload, (size_t)plen, 0, NULL);
    if (!json_is_object(p)) {
        fail(err, errlen, "token payload is not a JSON object");
        goto out;
    }
    json_t *exp = json_object_get(p, "exp"), *nbf = json_object_get(p, "nbf");
    if (!json_is_integer(exp)) {
        fail(err, errlen, "token has no exp");
        goto out;
    }
    if (json_integer_value(exp) <= now_s) {
        fail(err, errlen, "token expired");
        goto out;
    }
    if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now_s)) {
        fail(err, errlen, "token not valid yet (nbf)");
        goto out;
    }
    uint64_t uid;
    if (parse_sub(json_object_get(p, "sub"), &uid) != SK_OK) {
        fail(err, errlen, "token sub must be a positive integer user id");
        goto out;
    }
    *user_id = uid;
    rc = SK_OK;
out:
    json_decref(h);
    json_decref(p);
    return rc;
}

int sk_jwt_verify(const char *secret, size_t secret_len, const char *token, size_t len, int64_t now_s,
                  uint64_t *user_id, char *err, size_t errlen)
{
    struct oneshot_key key = {.secret = secret, .len = secret_len};
    return check_token(NULL, oneshot_mac, &key, token, len, now_s, user_id, err, errlen);
}

int sk_jwt_verifier_new(const char *secret, size_t secret_len, struct sk_jwt_verifier **out, char *err, size_t errlen)
{
    struct sk_jwt_verifier *v = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    int rc = SK_ERR;

    if (secret == NULL || secret_len == 0) {
        fail(err, errlen, "JWT secret is missing or empty");
        goto out;
    }
    if (secret_len > INT_MAX) {
        fail(err, errlen, "JWT secret is too long");
        goto out;
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        fail(err, errlen, "out of memory for the JWT verifier");
        goto out;
    }
    v->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (v->mac == NULL) {
        ossl_fail(err, errlen, "cannot fetch OpenSSL's HMAC");
        goto out;
    }
    v->ctx = EVP_MAC_CTX_new(v->mac);
    if (v->ctx == NULL) {
        ossl_fail(err, errlen, "cannot create an HMAC context");
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(v->ctx, (const unsigned char *)secret, secret_len, params) != 1) {
        ossl_fail(err, errlen, "cannot key HMAC-SHA256 with the JWT secret");
        goto out;
    }
    if (EVP_MAC_CTX_get_mac_size(v->ctx) != SHA256_LEN) {
        fail(err, errlen, "HMAC context does not produce SHA256-sized MACs");
        goto out;
    }
    *out = v;
    v = NULL;
    rc = SK_OK;
out:
    sk_jwt_verifier_free(v);
    return rc;
}

int sk_jwt_verifier_check(struct sk_jwt_verifier *v, const char *token, size_t len, int64_t now_s, uint64_t *user_id,
                          char *err, size_t errlen)
{
    if (v == NULL)
        return fail(err, errlen, "no JWT verifier");
    return check_token(v, verifier_mac, v, token, len, now_s, user_id, err, errlen);
}

void sk_jwt_verifier_get_stats(const struct sk_jwt_verifier *v, struct sk_jwt_verifier_stats *out)
{
    *out = v->stats;
}

void sk_jwt_verifier_free(struct sk_jwt_verifier *v)
{
    if (v == NULL)
        return;
    EVP_MAC_CTX_free(v->ctx);
    EVP_MAC_free(v->mac);
    free(v);
}

int sk_jwt_mint(const char *secret, size_t secret_len, uint64_t user_id, int64_t exp_s, char *out, size_t outlen)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char payload[128];
    unsigned char mac[SHA256_LEN];
    int n = snprintf(payload, sizeof(payload), "{\"sub\":\"%llu\",\"exp\":%lld}", (unsigned long long)user_id,
                     (long long)exp_s);
    if (n < 0 || (size_t)n >= sizeof(payload))
        return SK_ERR;
    int hl = b64url_encode((const unsigned char *)header, sizeof(header) - 1, out, outlen);
    if (hl < 0 || (size_t)hl + 1 >= outlen)
        return SK_ERR;
    out[hl] = '.';
    int pl = b64url_encode((const unsigned char *)payload, (size_t)n, out + hl + 1, outlen - (size_t)hl - 1);
    if (pl < 0)
        return SK_ERR;
    size_t signed_len = (size_t)hl + 1 + (size_t)pl;
    if (signed_len + 1 >= outlen || hs256(secret, secret_len, out, signed_len, mac) != SK_OK)
        return SK_ERR;
    out[signed_len] = '.';
    if (b64url_encode(mac, sizeof(mac), out + signed_len + 1, outlen - signed_len - 1) < 0)
        return SK_ERR;
    return SK_OK;
}
