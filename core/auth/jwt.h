/*
 * Buyer tokens: JWT with HS256 (RFC 7519 / RFC 7515), checked with OpenSSL's HMAC
 * and a constant-time comparison. `sub` is the user id (a positive integer, as a
 * JSON string or number); `exp` is required and checked, `nbf` is checked when
 * present. Only the HS256 algorithm is accepted ("none" and the others are refused).
 *
 * Two ways to check a token, with the same rules and the same error sentences:
 * sk_jwt_verify for one-off callers, and a struct sk_jwt_verifier that each event
 * loop keeps for the hot path (the HMAC is fetched and keyed once, and a header
 * segment seen before is not decoded and parsed again).
 */
#ifndef SK_JWT_H
#define SK_JWT_H

#include <stddef.h>
#include <stdint.h>

#define SK_JWT_MAX_LEN 2048 /* longer tokens are refused without parsing */

/* A verifier remembers a header segment (its base64url text) of at most this many
 * bytes; longer ones are checked every time, never remembered. */
#define SK_JWT_HEADER_CACHE_MAX 256

/* Verify `token` (len bytes, not NUL-terminated necessarily) with `secret` at time
 * now_s (Unix seconds). SK_OK and *user_id on success; SK_ERR with a short reason in
 * err (errlen bytes) otherwise, *user_id untouched. Thread-safe, no allocation
 * beyond OpenSSL's one-shot HMAC and the header's and payload's JSON parse; the
 * hot path uses a struct sk_jwt_verifier instead. */
int sk_jwt_verify(const char *secret, size_t secret_len, const char *token, size_t len, int64_t now_s,
                  uint64_t *user_id, char *err, size_t errlen);

/* Make a token for user_id that expires at exp_s into out (outlen bytes).
 * SK_OK, or SK_ERR when out is too small. */
int sk_jwt_mint(const char *secret, size_t secret_len, uint64_t user_id, int64_t exp_s, char *out, size_t outlen);

/* A token checker bound to one secret: an HMAC-SHA256 context keyed once, plus the
 * last good header segment it parsed. NOT thread-safe: each event-loop thread owns
 * its own (struct sk_loop_ctx.jwt) and only that thread uses it. */
struct sk_jwt_verifier;

/* Fetch OpenSSL's HMAC, key it with secret (secret_len bytes, copied into OpenSSL's
 * context: the caller keeps ownership of secret and may free it afterwards) and
 * digest SHA256. SK_OK and *out (owned by the caller, freed with
 * sk_jwt_verifier_free); SK_ERR with a sentence in err (errlen bytes) when secret
 * is NULL or empty or OpenSSL fails, *out untouched. */
int sk_jwt_verifier_new(const char *secret, size_t secret_len, struct sk_jwt_verifier **out, char *err, size_t errlen);

/* Exactly sk_jwt_verify's rules and sentences, with v's secret: SK_OK and *user_id,
 * or SK_ERR with the reason in err, *user_id untouched. The signature is always
 * computed and compared in constant time before the payload is read. A header
 * segment byte-identical to the last one v found to be HS256 skips its base64
 * decode and JSON parse (the outcome of that check depends on those bytes only);
 * a different one is checked and, when it is HS256 and fits the cache, remembered.
 * v must be non-NULL and used by one thread at a time. */
int sk_jwt_verifier_check(struct sk_jwt_verifier *v, const char *token, size_t len, int64_t now_s, uint64_t *user_id,
                          char *err, size_t errlen);

/* What the header cache did so far, for tests and metrics. */
struct sk_jwt_verifier_stats {
    uint64_t header_hits;   /* header segments matched the remembered one */
    uint64_t header_parses; /* header segments decoded and parsed (misses) */
};

/* Copy v's counters into *out. */
void sk_jwt_verifier_get_stats(const struct sk_jwt_verifier *v, struct sk_jwt_verifier_stats *out);

/* Free v and its OpenSSL objects. NULL is fine. */
void sk_jwt_verifier_free(struct sk_jwt_verifier *v);

#endif
