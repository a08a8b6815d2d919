/*
 * The values of Alipay's OpenAPI: parameter lists and the string that is signed,
 * form encoding (both ways), money as yuan strings and times in China time.
 *
 * Internal to the alipay plugin (hidden symbols); the test suite compiles this file
 * in to check it against known vectors. Everything here is pure CPU and
 * thread-safe.
 */
#ifndef SK_ALIPAY_PARAMS_H
#define SK_ALIPAY_PARAMS_H

#include <stddef.h>
#include <stdint.h>

/* One parameter; both strings owned by the list. */
struct al_param {
    char *name;
    char *value;
};

/* A list of parameters, in the order they were added. Zero-initialise it (or use
 * al_params_init) before use and free it with al_params_free. */
struct al_params {
    struct al_param *v;
    size_t n, cap;
};

void al_params_init(struct al_params *p);
void al_params_free(struct al_params *p);

/* Append a copy of name=value (value may be "" but not NULL). SK_ERR when out of
 * memory or when `name` is already in the list (a name appears once). */
int al_params_add(struct al_params *p, const char *name, const char *value);

/* The value of `name`, or NULL. Owned by the list. */
const char *al_params_get(const struct al_params *p, const char *name);

/*
 * The string to sign (or to verify), as Alipay defines it: every parameter but
 * `sign` (and but `sign_type` too unless keep_sign_type) whose value is not empty,
 * sorted by name in ASCII (byte) order, joined as name=value with '&', values raw.
 * Returns a malloc'd string the caller frees, or NULL when out of memory.
 */
char *al_params_sign_content(const struct al_params *p, int keep_sign_type);

/* The list form-encoded (name=value&…, every name and value percent-encoded by
 * curl_easy_escape), in list order. malloc'd, or NULL when out of memory. */
char *al_params_encode(const struct al_params *p);

/*
 * Decode an application/x-www-form-urlencoded body of len bytes into `out` (an
 * empty list): pairs split at '&', name and value at the first '=', '+' read as a
 * space, %XX decoded by curl_easy_unescape. Empty pairs ("a=1&&b=2") are skipped.
 * SK_ERR with a sentence in errbuf (SK_ERRLEN) for a pair without '=', an empty
 * name, a name given twice or a decoded NUL; `out` is then left empty.
 */
int al_params_decode(const char *body, size_t len, struct al_params *out, char *errbuf);

/* Longest yuan string al_yuan_format writes, NUL included. */
#define AL_YUAN_MAX 32

/* Cents as yuan with two decimals ("0.01", "99.00"), integer arithmetic only. cents
 * must be >= 0; out holds at least AL_YUAN_MAX bytes. SK_ERR for negative cents. */
int al_yuan_format(int64_t cents, char *out);

/*
 * Yuan as the gateway writes them ("99.00") into cents, integer arithmetic only.
 * Accepted: digits without a needless leading zero, then optionally '.' and one or
 * two digits ("0.01", "99.00", "99.9" = 9990, "99" = 9900), at most 12 digits
 * before the point. Everything else (signs, spaces, "1,000.00", "1.001", ".5",
 * "1.", "1e2", "") is SK_ERR, and *cents is untouched.
 */
int al_yuan_parse(const char *s, int64_t *cents);

/* Length of "yyyy-MM-dd HH:mm:ss" plus its NUL. */
#define AL_TIME_MAX 20

/* ms since the Unix epoch as China time (UTC+8, no summer time), to the second
 * (rounded down): "2026-11-25 18:00:00". out holds AL_TIME_MAX bytes. SK_ERR for
 * times before year 1 or after year 9999. */
int al_china_time(int64_t ms, char *out);

/* The reverse: exactly "yyyy-MM-dd HH:mm:ss" with a real date and time, in China
 * time, into ms since the epoch. SK_ERR (and *ms untouched) for anything else. */
int al_china_time_parse(const char *s, int64_t *ms);

#endif
