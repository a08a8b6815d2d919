/*
 * Buyer tokens: JWT with HS256 (RFC 7519 / RFC 7515), checked with OpenSSL's HMAC
 * and a constant-time comparison. `sub` is the user id (a positive integer, as a
 * JSON string or number); `exp` is required and checked, `nbf` is checked when
 * present. Only the HS256 algorithm is accepted ("none" and the others are refused).
 */
#ifndef SK_JWT_H
#define SK_JWT_H

#include <stddef.h>
#include <stdint.h>

#define SK_JWT_MAX_LEN 2048  /* longer tokens are refused without parsing */

/* Verify `token` (len bytes, not NUL-terminated necessarily) with `secret` at time
 * now_s (Unix seconds). SK_OK and *user_id on success; SK_ERR with a short reason in
 * err (errlen bytes) otherwise, *user_id untouched. Thread-safe, no allocation
 * beyond the payload's JSON parse. */
int sk_jwt_verify(const char *secret, size_t secret_len, const char *token, size_t len, int64_t now_s,
                  uint64_t *user_id, char *err, size_t errlen);

/* Make a token for user_id that expires at exp_s into out (outlen bytes).
 * SK_OK, or SK_ERR when out is too small. */
int sk_jwt_mint(const char *secret, size_t secret_len, uint64_t user_id, int64_t exp_s, char *out, size_t outlen);

#endif
