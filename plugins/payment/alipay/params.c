/*
 * Alipay OpenAPI values: parameter lists, the string to sign, form encoding, yuan
 * and China time. Percent-encoding is libcurl's (curl_easy_escape/unescape; the
 * handle argument is ignored since curl 7.82, so NULL is passed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <seckill/plugin.h>

#include "params.h"

#define CHINA_OFFSET_S  (8 * 3600) /* UTC+8 all year */
#define YUAN_MAX_DIGITS 12         /* before the point: far above any real amount */

void al_params_init(struct al_params *p)
{
    memset(p, 0, sizeof(*p));
}

void al_params_free(struct al_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].value);
    }
    free(p->v);
    memset(p, 0, sizeof(*p));
}

const char *al_params_get(const struct al_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].name, name) == 0)
            return p->v[i].value;
    }
    return NULL;
}

/* Take ownership of name and value (both malloc'd) on success only. */
static int add_owned(struct al_params *p, char *name, char *value)
{
    if (al_params_get(p, name) != NULL)
        return SK_ERR;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct al_param *v = realloc(p->v, cap * sizeof(*v));
        if (v == NULL)
            return SK_ERR;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n].name = name;
    p->v[p->n].value = value;
    p->n++;
    return SK_OK;
}

int al_params_add(struct al_params *p, const char *name, const char *value)
{
    char *n = strdup(name), *v = strdup(value);
    int rc = SK_ERR;

    if (n == NULL || v == NULL)
        goto out;
    if (add_owned(p, n, v) != SK_OK)
        goto out;
    n = v = NULL;
    rc = SK_OK;
out:
    free(n);
    free(v);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    const struct al_param *x = *(const struct al_param *const *)a, *y = *(const struct al_param *const *)b;
    return strcmp(x->name, y->name);
}

char *al_params_sign_content(const struct al_params *p, int keep_sign_type)
{
    const struct al_param **use = NULL;
    size_t n = 0, len = 1;
    char *out = NULL, *w;

    use = calloc(p->n ? p->n : 1, sizeof(*use));
    if (use == NULL)
        goto out;
    for (size_t i = 0; i < p->n; i++) {
        const struct al_param *a = &p->v[i];
        if (a->value[0] == '\0' || strcmp(a->name, "sign") == 0 ||
            (!keep_sign_type && strcmp(a->name, "sign_type") == 0))
            continue;
        use[n++] = a;
        len += strlen(a->name) + 1 + strlen(a->value) + 1;
    }
    qsort(use, n, sizeof(*use), by_name);
    out = malloc(len);
    if (out == NULL)
        goto out;
    w = out;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(use[i]->name), vl = strlen(use[i]->value);
        if (i > 0)
            *w++ = '&';
        memcpy(w, use[i]->name, nl);
        w += nl;
        *w++ = '=';
        memcpy(w, use[i]->value, vl);
        w += vl;
    }
    *w = '\0';
out:
    free(use);
    return out;
}

char *al_params_encode(const struct al_params *p)
{
    char *out = NULL, *w;
    char **enc = calloc(p->n ? 2 * p->n : 1, sizeof(*enc));
    size_t len = 1;
    int ok = enc != NULL;

    for (size_t i = 0; ok && i < p->n; i++) {
        enc[2 * i] = curl_easy_escape(NULL, p->v[i].name, 0);
        enc[2 * i + 1] = curl_easy_escape(NULL, p->v[i].value, 0);
        ok = enc[2 * i] != NULL && enc[2 * i + 1] != NULL;
        if (ok)
            len += strlen(enc[2 * i]) + 1 + strlen(enc[2 * i + 1]) + 1;
    }
    if (ok)
        out = malloc(len);
    if (out != NULL) {
        w = out;
        for (size_t i = 0; i < p->n; i++) {
            size_t nl = strlen(enc[2 * i]), vl = strlen(enc[2 * i + 1]);
            if (i > 0)
                *w++ = '&';
            memcpy(w, enc[2 * i], nl);
            w += nl;
            *w++ = '=';
            memcpy(w, enc[2 * i + 1], vl);
            w += vl;
        }
        *w = '\0';
    }
    for (size_t i = 0; enc != NULL && i < 2 * p->n; i++)
        curl_free(enc[i]);
    free(enc);
    return out;
}

/* One form-encoded component of len bytes into a malloc'd string: '+' is a space
 * (form encoding), then curl decodes %XX. NULL when out of memory or when the
 * decoded text holds a NUL (*nul set). */
static char *form_unescape(const char *s, size_t len, int *nul)
{
    char *plus = NULL, *dec = NULL, *out = NULL;
    int dlen = 0;

    *nul = 0;
    if (len > (size_t)INT32_MAX)
        goto out;
    plus = malloc(len + 1);
    if (plus == NULL)
        goto out;
    for (size_t i = 0; i < len; i++)
        plus[i] = s[i] == '+' ? ' ' : s[i];
    plus[len] = '\0';
    dec = curl_easy_unescape(NULL, plus, (int)len, &dlen);
    if (dec == NULL)
        goto out;
    if (memchr(dec, '\0', (size_t)dlen) != NULL) {
        *nul = 1;
        goto out;
    }
    out = strdup(dec);
out:
    free(plus);
    curl_free(dec);
    return out;
}

int al_params_decode(const char *body, size_t len, struct al_params *out, char *errbuf)
{
    struct al_params p;
    const char *s = body, *end = body + len;
    int rc = SK_ERR;

    al_params_init(&p);
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        char *name = NULL, *value = NULL;
        int nul1 = 0, nul2 = 0;

        if (stop == s) { /* "a=1&&b=2" or a trailing '&' */
            s = stop + 1;
            continue;
        }
        if (eq == NULL || eq == s) {
            snprintf(errbuf, SK_ERRLEN, "malformed form body: \"%.*s\" is not name=value",
                     (int)(stop - s > 40 ? 40 : stop - s), s);
            goto out;
        }
        name = form_unescape(s, (size_t)(eq - s), &nul1);
        value = form_unescape(eq + 1, (size_t)(stop - eq - 1), &nul2);
        if (name == NULL || value == NULL) {
            snprintf(errbuf, SK_ERRLEN, "%s",
                     nul1 || nul2 ? "malformed form body: a NUL byte in a name or value" : "out of memory");
            free(name);
            free(value);
            goto out;
        }
        if (al_params_get(&p, name) != NULL) {
            snprintf(errbuf, SK_ERRLEN, "malformed form body: parameter %.64s given twice", name);
            free(name);
            free(value);
            goto out;
        }
        if (add_owned(&p, name, value) != SK_OK) {
            snprintf(errbuf, SK_ERRLEN, "out of memory");
            free(name);
            free(value);
            goto out;
        }
        s = stop + 1;
    }
    *out = p;
    al_params_init(&p);
    rc = SK_OK;
out:
    al_params_free(&p);
    return rc;
}

int al_yuan_format(int64_t cents, char *out)
{
    if (cents < 0)
        return SK_ERR;
    snprintf(out, AL_YUAN_MAX, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    return SK_OK;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int al_yuan_parse(const char *s, int64_t *cents)
{
    int64_t yuan = 0, frac = 0;
    size_t i = 0, digits = 0, fdigits = 0;

    while (is_digit(s[i])) {
        yuan = yuan * 10 + (s[i] - '0');
        i++;
        digits++;
        if (digits > YUAN_MAX_DIGITS)
            return SK_ERR;
    }
    if (digits == 0 || (digits > 1 && s[0] == '0'))
        return SK_ERR;
    if (s[i] == '.') {
        i++;
        while (is_digit(s[i]) && fdigits < 3) {
            frac = frac * 10 + (s[i] - '0');
            i++;
            fdigits++;
        }
        if (fdigits == 0 || fdigits > 2)
            return SK_ERR;
        if (fdigits == 1)
            frac *= 10;
    }
    if (s[i] != '\0')
        return SK_ERR;
    *cents = yuan * 100 + frac;
    return SK_OK;
}

int al_china_time(int64_t ms, char *out)
{
    /* Floor division, so that a time before the epoch does not round up. */
    int64_t sec = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    struct tm tm;
    time_t t;

    /* Years 1..9999 only: four digits, as the format has. */
    if (sec < -62135596800LL - CHINA_OFFSET_S || sec > 253402300799LL - CHINA_OFFSET_S)
        return SK_ERR;
    t = (time_t)(sec + CHINA_OFFSET_S);
    if (gmtime_r(&t, &tm) == NULL)
        return SK_ERR;
    if (strftime(out, AL_TIME_MAX, "%Y-%m-%d %H:%M:%S", &tm) != AL_TIME_MAX - 1)
        return SK_ERR;
    return SK_OK;
}

int al_china_time_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    char back[AL_TIME_MAX];
    const char *end;
    time_t t;

    if (strlen(s) != AL_TIME_MAX - 1)
        return SK_ERR;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (end == NULL || *end != '\0')
        return SK_ERR;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return SK_ERR;
    /* Written back, the time must read the same: this refuses what strptime lets
     * through or timegm normalises (one-digit fields, 30 February, 25:00). */
    if (al_china_time(((int64_t)t - CHINA_OFFSET_S) * 1000, back) != SK_OK || strcmp(back, s) != 0)
        return SK_ERR;
    *ms = ((int64_t)t - CHINA_OFFSET_S) * 1000;
    return SK_OK;
}
