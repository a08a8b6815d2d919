/* JWT HS256; see jwt.h. */
#include "jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
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

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
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

int sk_jwt_verify(const char *secret, size_t secret_len, const char *token, size_t len, int64_t now_s,
                  uint64_t *user_id, char *err, size_t errlen)
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
    int hlen = b64url_decode(token, (size_t)(dot1 - token), header, sizeof(header));
    int plen = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload));
    int slen = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
    if (hlen <= 0 || plen <= 0 || slen < 0)
        return fail(err, errlen, "token is not valid base64url");

    h = json_loadb((const char *)header, (size_t)hlen, 0, NULL);
    json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        fail(err, errlen, "token algorithm must be HS256");
        goto out;
    }
    /* The signature before anything in the payload is believed. */
    if (hs256(secret, secret_len, token, (size_t)(dot2 - token), mac) != SK_OK) {
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
