/* Text helpers of the console; see format.h. */
#include "format.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <wchar.h>

#include <seckill/plugin.h>

#include "core/timeutil.h"

#define MAX_CENTS 100000000000LL /* 10^11, the admin API's limit */
#define ELLIPSIS  "\xe2\x80\xa6" /* U+2026, one column */

/* Widths must not depend on the operator's LANG (the console may run under "C"),
 * so decoding happens in C.UTF-8, switched in for the calling thread only. */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Switch the thread to C.UTF-8; returns what to give back to utf8_leave. */
static locale_t utf8_enter(void)
{
    pthread_once(&utf8_once, utf8_init);
    return utf8_locale != (locale_t)0 ? uselocale(utf8_locale) : (locale_t)0;
}

static void utf8_leave(locale_t old)
{
    if (old != (locale_t)0)
        uselocale(old);
}

/* One character at s (n bytes left): its length in bytes and its columns. A byte
 * that does not start a valid character, or a control character, is one byte
 * drawn as '?' (one column, *bad set). */
static size_t next_char(const char *s, size_t n, int *cols, int *bad)
{
    mbstate_t st;
    wchar_t wc;
    memset(&st, 0, sizeof(st));
    size_t k = mbrtowc(&wc, s, n, &st);
    *bad = 0;
    if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
        *bad = 1;
        *cols = 1;
        return 1;
    }
    int w = wcwidth(wc);
    if (w < 0) {
        *bad = 1;
        *cols = 1;
        return k;
    }
    *cols = w;
    return k;
}

char *sk_con_fmt_money(int64_t cents, char *buf, size_t len)
{
    /* Unsigned magnitude, so INT64_MIN prints too. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(buf, len, "%s\xc2\xa5%llu.%02llu", cents < 0 ? "-" : "", (unsigned long long)(mag / 100),
             (unsigned long long)(mag % 100));
    return buf;
}

int sk_con_parse_money(const char *text, int64_t *out_cents)
{
    int rc = SK_ERR;
    const char *p = text;
    int64_t units = 0, frac = 0;
    int ndig = 0, nfrac = 0;

    if (text == NULL)
        goto out;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "\xc2\xa5", 2) == 0) /* ¥ */
        p += 2;
    else if (strncmp(p, "\xef\xbf\xa5", 3) == 0) /* fullwidth ￥ */
        p += 3;
    while (isdigit((unsigned char)*p)) {
        if (ndig >= 12)
            goto out;
        units = units * 10 + (*p - '0');
        ndig++;
        p++;
    }
    if (ndig == 0)
        goto out;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (nfrac >= 2)
                goto out;
            frac = frac * 10 + (*p - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0)
            goto out;
        if (nfrac == 1)
            frac *= 10;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        goto out;
    if (units > MAX_CENTS / 100 || units * 100 + frac > MAX_CENTS)
        goto out;
    *out_cents = units * 100 + frac;
    rc = SK_OK;
out:
    return rc;
}

char *sk_con_fmt_duration(int64_t ms, char *buf, size_t len)
{
    uint64_t s = (ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms) / 1000;
    unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (d > 0)
        snprintf(buf, len, "%llud%02lluh%02llum", d, h, m);
    else if (h > 0)
        snprintf(buf, len, "%lluh%02llum%02llus", h, m, sec);
    else if (m > 0)
        snprintf(buf, len, "%llum%02llus", m, sec);
    else
        snprintf(buf, len, "%llus", sec);
    return buf;
}

char *sk_con_fmt_countdown(int64_t target_ms, int64_t now_ms, char *buf, size_t len)
{
    char d[SK_CON_FMT_LEN];
    int64_t diff = target_ms - now_ms;
    if (diff > -1000 && diff < 1000)
        snprintf(buf, len, "now");
    else if (diff > 0)
        snprintf(buf, len, "in %s", sk_con_fmt_duration(diff, d, sizeof(d)));
    else
        snprintf(buf, len, "%s ago", sk_con_fmt_duration(diff, d, sizeof(d)));
    return buf;
}

char *sk_con_fmt_time(int64_t ms, enum sk_con_time_style style, char *buf, size_t len)
{
    struct tm tm;
    time_t secs = (time_t)(ms / 1000);
    if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, len, "-");
        return buf;
    }
    if (style == SK_CON_TIME_SHORT)
        snprintf(buf, len, "%02d-%02d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, style == SK_CON_TIME_FULL ? "Z" : "");
    return buf;
}

/* "+1h30m": number-unit pairs, d/h/m/s, at most ten years in all. */
static int parse_relative(const char *p, int64_t *out_ms)
{
    int64_t total = 0;
    int pairs = 0;
    while (*p != '\0') {
        int64_t n = 0, unit;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd >= 9)
                return SK_ERR;
            n = n * 10 + (*p++ - '0');
            nd++;
        }
        if (nd == 0)
            return SK_ERR;
        switch (*p++) {
        case 'd':
            unit = 86400000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'm':
            unit = 60000;
            break;
        case 's':
            unit = 1000;
            break;
        default:
            return SK_ERR;
        }
        total += n * unit;
        if (total > 10LL * 366 * 86400000)
            return SK_ERR;
        pairs++;
    }
    if (pairs == 0)
        return SK_ERR;
    *out_ms = total;
    return SK_OK;
}

int sk_con_parse_time_input(const char *text, int64_t now_ms, int64_t *out_ms)
{
    int rc = SK_ERR;
    char buf[64];
    size_t n;
    int64_t v;

    if (text == NULL)
        goto out;
    while (*text == ' ' || *text == '\t')
        text++;
    n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(buf) - 4)
        goto out;
    memcpy(buf, text, n);
    buf[n] = '\0';

    if (strcasecmp(buf, "now") == 0) {
        v = now_ms;
    } else if (buf[0] == '+') {
        if (parse_relative(buf + 1, &v) != SK_OK)
            goto out;
        v += now_ms;
    } else if (sk_time_parse(buf, &v) != SK_OK) {
        /* No zone given: the console shows UTC, so it reads UTC. "10:00" gets ":00". */
        if (n == 16)
            strcat(buf, ":00");
        strcat(buf, "Z");
        if (sk_time_parse(buf, &v) != SK_OK)
            goto out;
    }
    *out_ms = v;
    rc = SK_OK;
out:
    return rc;
}

char *sk_con_fmt_rate(double per_s, char *buf, size_t len)
{
    if (!(per_s > 0.0)) /* also NaN */
        snprintf(buf, len, "0/s");
    else if (per_s < 9.95)
        snprintf(buf, len, "%.1f/s", per_s);
    else if (per_s < 999.5)
        snprintf(buf, len, "%.0f/s", per_s);
    else if (per_s < 999500.0)
        snprintf(buf, len, "%.1fk/s", per_s / 1000.0);
    else
        snprintf(buf, len, "%.1fM/s", per_s / 1000000.0);
    return buf;
}

int sk_con_str_width(const char *s)
{
    int total = 0;
    if (s == NULL)
        return 0;
    locale_t old = utf8_enter();
    size_t n = strlen(s);
    while (n > 0) {
        int cols, bad;
        size_t k = next_char(s, n, &cols, &bad);
        total += cols;
        s += k;
        n -= k;
    }
    utf8_leave(old);
    return total;
}

int sk_con_str_fit(const char *s, int width, int pad, char *out, size_t outlen)
{
    size_t used = 0;
    int cols = 0;

    if (outlen == 0)
        return 0;
    out[0] = '\0';
    if (width <= 0)
        return 0;
    if (s == NULL)
        s = "";
    int cut = sk_con_str_width(s) > width;
    int budget = cut ? width - 1 : width; /* room for the ellipsis */

    locale_t old = utf8_enter();
    size_t n = strlen(s);
    while (n > 0) {
        int w, bad;
        size_t k = next_char(s, n, &w, &bad);
        size_t bytes = bad ? 1 : k;
        /* keep room for the ellipsis and the NUL */
        if (cols + w > budget || used + bytes + 3 + 1 > outlen)
            break;
        if (bad)
            out[used] = '?';
        else
            memcpy(out + used, s, k);
        used += bytes;
        cols += w;
        s += k;
        n -= k;
    }
    utf8_leave(old);
    if (cut && used + 3 + 1 <= outlen) {
        memcpy(out + used, ELLIPSIS, 3);
        used += 3;
        cols++;
    }
    while (pad && cols < width && used + 1 < outlen) {
        out[used++] = ' ';
        cols++;
    }
    out[used] = '\0';
    return cols;
}

int sk_con_str_right(const char *s, int width, char *out, size_t outlen)
{
    int w = sk_con_str_width(s);
    if (w >= width || outlen == 0)
        return sk_con_str_fit(s, width, 1, out, outlen);
    size_t lead = (size_t)(width - w);
    if (lead >= outlen)
        lead = outlen - 1;
    memset(out, ' ', lead);
    return (int)lead + sk_con_str_fit(s, w, 0, out + lead, outlen - lead);
}

int sk_con_utf8_printable(const char *s, size_t n)
{
    int ok = 1;
    locale_t old = utf8_enter();
    while (n > 0 && ok) {
        int cols, bad;
        size_t k = next_char(s, n, &cols, &bad);
        ok = !bad;
        s += k;
        n -= k;
    }
    utf8_leave(old);
    return ok;
}

/* Cells for `part` of `whole` on a bar of `width`: rounded, but never 0 for a
 * non-zero part and never the whole bar for less than the whole. */
static int bar_cells(int64_t part, int64_t whole, int width)
{
    int c = (int)((part * width + whole / 2) / whole);
    if (part > 0 && c == 0)
        c = 1;
    if (part < whole && c == width && width > 1)
        c = width - 1;
    return c;
}

void sk_con_stock_bar(int64_t initial, int64_t reserved, int64_t paid, int width, int cells[3])
{
    cells[0] = cells[1] = cells[2] = 0;
    if (width <= 0)
        return;
    if (initial <= 0) {
        cells[2] = width;
        return;
    }
    reserved = reserved < 0 ? 0 : reserved > initial ? initial : reserved;
    paid = paid < 0 ? 0 : paid > reserved ? reserved : paid;
    int taken = bar_cells(reserved, initial, width);
    int pc = bar_cells(paid, initial, width);
    if (pc > taken)
        pc = taken;
    if (paid < reserved && pc == taken && taken > 1)
        pc = taken - 1;
    cells[0] = pc;
    cells[1] = taken - pc;
    cells[2] = width - taken;
}
