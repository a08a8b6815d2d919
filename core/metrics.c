/*
 * The metrics registry.
 *
 * Families (name, help, type) and their series (label text, value) are linked lists
 * appended under one mutex and never shortened until sk_metrics_free, so a struct
 * sk_metric stays valid and its value is a plain atomic.
 *
 * HTTP accounting is on every request's path and must not take that mutex: the
 * (listener, route, status) → counter lookup goes through a fixed open-addressing
 * table whose slots are published with release stores and read with acquire loads;
 * only a miss (a new combination, i.e. a route's first use with a status) takes the
 * mutex. The per-listener histograms are a small array published the same way.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum family_type { FAMILY_COUNTER, FAMILY_GAUGE };

struct sk_metric {
    _Atomic int64_t value;
    char *labels;
    struct sk_metric *next;
};

struct family {
    char *name;
    char *help;
    enum family_type type;
    struct sk_metric *series;
    struct sk_metric **tail;
    struct family *next;
};

/* (listener, route, status) → its seckill_http_requests_total series. */
struct http_series {
    uint64_t hash;
    int status;
    char *listener;
    char *route;
    struct sk_metric *counter;
};

/* Bucket upper bounds in microseconds (0.0001 s … 1 s); one more bucket is +Inf. */
static const int64_t bucket_us[] = {100,   250,    500,    1000,   2500,   5000,   10000,
                                    25000, 50000, 100000, 250000, 500000, 1000000};
static const char *const bucket_le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                                        "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1"};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
_Static_assert(N_BUCKETS + 1 <= SK_METRICS_MAX_BUCKETS, "sk_metrics_snapshot is too small");

struct http_hist {
    char *listener;
    _Atomic uint64_t buckets[N_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    _Atomic int64_t sum_us;
};

#define HTTP_SLOTS 4096 /* power of two; listeners × routes × statuses stays far below */
#define MAX_LISTENERS 16

#define REQUESTS_NAME "seckill_http_requests_total"
#define REQUESTS_HELP "HTTP requests answered, by listener, route pattern (or \"unmatched\") and status."
#define DURATION_NAME "seckill_http_request_duration_seconds"
#define DURATION_HELP "Time from receiving an HTTP request to answering it, by listener."

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families;
static struct family **families_tail = &families;
static _Atomic(struct http_series *) http_slots[HTTP_SLOTS];
static _Atomic(struct http_hist *) hists[MAX_LISTENERS];
static int warned_full; /* under reg_lock */

static void *xmalloc(size_t size)
{
    void *p = malloc(size);

    if (p == NULL) {
        sk_err("metrics", "out of memory (%zu bytes)", size);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = xmalloc(len);

    memcpy(p, s, len);
    return p;
}

int sk_metrics_init(void)
{
    /* everything is statically initialised; kept so the start-up order reads right */
    return SK_OK;
}

void sk_metrics_free(void)
{
    struct family *f, *fnext;
    struct sk_metric *m, *mnext;
    size_t i;

    pthread_mutex_lock(&reg_lock);
    for (f = families; f != NULL; f = fnext) {
        fnext = f->next;
        for (m = f->series; m != NULL; m = mnext) {
            mnext = m->next;
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    families = NULL;
    families_tail = &families;
    for (i = 0; i < HTTP_SLOTS; i++) {
        struct http_series *s = atomic_load(&http_slots[i]);
        if (s != NULL) {
            free(s->listener);
            free(s->route);
            free(s);
            atomic_store(&http_slots[i], NULL);
        }
    }
    for (i = 0; i < MAX_LISTENERS; i++) {
        struct http_hist *h = atomic_load(&hists[i]);
        if (h != NULL) {
            free(h->listener);
            free(h);
            atomic_store(&hists[i], NULL);
        }
    }
    warned_full = 0;
    pthread_mutex_unlock(&reg_lock);
}

/* Caller holds reg_lock. */
static struct sk_metric *register_locked(const char *name, const char *labels, const char *help, enum family_type type)
{
    struct family *f;
    struct sk_metric *m;

    if (labels == NULL)
        labels = "";
    for (f = families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f == NULL) {
        f = xmalloc(sizeof(*f));
        f->name = xstrdup(name);
        f->help = xstrdup(help != NULL ? help : "");
        f->type = type;
        f->series = NULL;
        f->tail = &f->series;
        f->next = NULL;
        *families_tail = f;
        families_tail = &f->next;
    } else if (f->type != type) {
        sk_warn("metrics", "%s is registered as a %s; keeping that type", name,
                f->type == FAMILY_COUNTER ? "counter" : "gauge");
    }
    for (m = f->series; m != NULL; m = m->next)
        if (strcmp(m->labels, labels) == 0)
            break;
    if (m == NULL) {
        m = xmalloc(sizeof(*m));
        atomic_init(&m->value, 0);
        m->labels = xstrdup(labels);
        m->next = NULL;
        *f->tail = m;
        f->tail = &m->next;
    }
    return m;
}

static struct sk_metric *register_metric(const char *name, const char *labels, const char *help, enum family_type type)
{
    struct sk_metric *m;

    pthread_mutex_lock(&reg_lock);
    m = register_locked(name, labels, help, type);
    pthread_mutex_unlock(&reg_lock);
    return m;
}

struct sk_metric *sk_metric_counter(const char *name, const char *labels, const char *help)
{
    return register_metric(name, labels, help, FAMILY_COUNTER);
}

struct sk_metric *sk_metric_gauge(const char *name, const char *labels, const char *help)
{
    return register_metric(name, labels, help, FAMILY_GAUGE);
}

void sk_metric_add(struct sk_metric *m, int64_t delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

void sk_metric_set(struct sk_metric *m, int64_t value)
{
    if (m != NULL)
        atomic_store_explicit(&m->value, value, memory_order_relaxed);
}

int64_t sk_metric_value(const struct sk_metric *m)
{
    return m != NULL ? atomic_load_explicit(&((struct sk_metric *)m)->value, memory_order_relaxed) : 0;
}

/* --- HTTP accounting -------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t series_hash(const char *listener, const char *route, int status)
{
    uint64_t h = 14695981039346656037ULL;

    h = fnv1a(h, listener);
    h ^= 0xff; /* separator: ("ab","c") and ("a","bc") differ */
    h *= 1099511628211ULL;
    h = fnv1a(h, route);
    h ^= (uint64_t)(unsigned)status;
    h *= 1099511628211ULL;
    return h;
}

static int series_is(const struct http_series *s, uint64_t hash, const char *listener, const char *route, int status)
{
    return s->hash == hash && s->status == status && strcmp(s->listener, listener) == 0 &&
           strcmp(s->route, route) == 0;
}

/* Prometheus label values escape backslash, double quote and newline. */
static void append_escaped(char *dst, size_t *at, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"') {
            dst[(*at)++] = '\\';
            dst[(*at)++] = *s;
        } else if (*s == '\n') {
            dst[(*at)++] = '\\';
            dst[(*at)++] = 'n';
        } else {
            dst[(*at)++] = *s;
        }
    }
}

static char *http_labels(const char *listener, const char *route, int status)
{
    size_t cap = 2 * (strlen(listener) + strlen(route)) + 64, at = 0;
    char *buf = xmalloc(cap);

    memcpy(buf, "listener=\"", 10);
    at = 10;
    append_escaped(buf, &at, listener);
    memcpy(buf + at, "\",route=\"", 9);
    at += 9;
    append_escaped(buf, &at, route);
    at += (size_t)snprintf(buf + at, cap - at, "\",status=\"%d\"", status);
    return buf;
}

static struct sk_metric *http_counter_slow(uint64_t hash, const char *listener, const char *route, int status)
{
    struct sk_metric *found = NULL;
    struct http_series *s;
    size_t i, slot;
    char *labels;

    pthread_mutex_lock(&reg_lock);
    for (i = 0; i < HTTP_SLOTS; i++) {
        slot = (size_t)(hash + i) & (HTTP_SLOTS - 1);
        s = atomic_load_explicit(&http_slots[slot], memory_order_acquire);
        if (s == NULL)
            break;
        if (series_is(s, hash, listener, route, status)) {
            found = s->counter;
            goto out;
        }
    }
    if (i == HTTP_SLOTS) {
        if (!warned_full)
            sk_warn("metrics", "more than %d (listener, route, status) combinations; the rest are not counted by "
                    "route", HTTP_SLOTS);
        warned_full = 1;
        goto out;
    }
    labels = http_labels(listener, route, status);
    s = xmalloc(sizeof(*s));
    s->hash = hash;
    s->status = status;
    s->listener = xstrdup(listener);
    s->route = xstrdup(route);
    s->counter = register_locked(REQUESTS_NAME, labels, REQUESTS_HELP, FAMILY_COUNTER);
    free(labels);
    atomic_store_explicit(&http_slots[slot], s, memory_order_release);
    found = s->counter;
out:
    pthread_mutex_unlock(&reg_lock);
    return found;
}

static struct sk_metric *http_counter(const char *listener, const char *route, int status)
{
    uint64_t hash = series_hash(listener, route, status);
    struct http_series *s = NULL;
    size_t i;

    for (i = 0; i < HTTP_SLOTS; i++) {
        s = atomic_load_explicit(&http_slots[(hash + i) & (HTTP_SLOTS - 1)], memory_order_acquire);
        if (s == NULL || series_is(s, hash, listener, route, status))
            break;
    }
    return s != NULL && i < HTTP_SLOTS ? s->counter : http_counter_slow(hash, listener, route, status);
}

static struct http_hist *find_hist(const char *listener)
{
    struct http_hist *h = NULL;
    size_t i;

    for (i = 0; i < MAX_LISTENERS; i++) {
        h = atomic_load_explicit(&hists[i], memory_order_acquire);
        if (h == NULL || strcmp(h->listener, listener) == 0)
            break;
    }
    return i < MAX_LISTENERS ? h : NULL;
}

/* Slow path of hist_for: a listener's first request. */
static struct http_hist *hist_add(const char *listener)
{
    struct http_hist *h = NULL;
    size_t i;

    pthread_mutex_lock(&reg_lock);
    for (i = 0; i < MAX_LISTENERS; i++) {
        h = atomic_load_explicit(&hists[i], memory_order_acquire);
        if (h == NULL || strcmp(h->listener, listener) == 0)
            break;
    }
    if (i == MAX_LISTENERS) {
        h = NULL;
    } else if (h == NULL) {
        h = xmalloc(sizeof(*h));
        memset(h, 0, sizeof(*h));
        h->listener = xstrdup(listener);
        atomic_store_explicit(&hists[i], h, memory_order_release);
    }
    pthread_mutex_unlock(&reg_lock);
    return h;
}

static struct http_hist *hist_for(const char *listener)
{
    struct http_hist *h = find_hist(listener);

    return h != NULL ? h : hist_add(listener);
}

void sk_metrics_http(const char *listener, const char *route, int status, int64_t duration_us)
{
    struct http_hist *h;
    size_t b;

    if (listener == NULL || route == NULL)
        goto out;
    sk_metric_add(http_counter(listener, route, status), 1);
    h = hist_for(listener);
    if (h == NULL)
        goto out;
    if (duration_us < 0)
        duration_us = 0;
    for (b = 0; b < N_BUCKETS && duration_us > bucket_us[b]; b++)
        ;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, duration_us, memory_order_relaxed);
out:
    return;
}

/* The q-quantile of per-bucket counts (not cumulative), interpolated inside its
 * bucket as Prometheus' histogram_quantile does; 0 when counts are all zero. */
static int64_t quantile_of(const uint64_t *counts, double q)
{
    uint64_t total = 0, cum = 0;
    size_t b;
    for (b = 0; b <= N_BUCKETS; b++)
        total += counts[b];
    if (total == 0)
        return 0;
    double rank = q * (double)total;
    for (b = 0; b <= N_BUCKETS; b++) {
        if ((double)(cum + counts[b]) >= rank && counts[b] > 0)
            break;
        cum += counts[b];
    }
    /* beyond the last finite bound, answer it */
    if (b >= N_BUCKETS)
        return bucket_us[N_BUCKETS - 1];
    double lower = b == 0 ? 0.0 : (double)bucket_us[b - 1];
    double upper = (double)bucket_us[b];
    return (int64_t)(lower + (upper - lower) * ((rank - (double)cum) / (double)counts[b]));
}

void sk_metrics_http_snapshot(const char *listener, struct sk_metrics_snapshot *out)
{
    struct http_hist *h = listener ? find_hist(listener) : NULL;
    memset(out, 0, sizeof(*out));
    for (size_t b = 0; h != NULL && b <= N_BUCKETS && b < SK_METRICS_MAX_BUCKETS; b++) {
        out->counts[b] = atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        out->total += out->counts[b];
    }
}

int64_t sk_metrics_window_quantile_us(const struct sk_metrics_snapshot *newer, const struct sk_metrics_snapshot *older,
                                      double q)
{
    uint64_t counts[N_BUCKETS + 1];
    if (!(q > 0.0 && q < 1.0))
        return -1;
    for (size_t b = 0; b <= N_BUCKETS; b++)
        counts[b] = newer->counts[b] - (older ? older->counts[b] : 0);
    return quantile_of(counts, q);
}

int64_t sk_metrics_http_quantile_us(const char *listener, double q)
{
    struct sk_metrics_snapshot now;
    if (listener == NULL || !(q > 0.0 && q < 1.0))
        return -1;
    sk_metrics_http_snapshot(listener, &now);
    return sk_metrics_window_quantile_us(&now, NULL, q);
}

/* --- rendering ------------------------------------------------------------------- */

/* HELP text escapes backslash and newline. */
static void put_help(FILE *out, const char *name, const char *help)
{
    fprintf(out, "# HELP %s ", name);
    for (; *help != '\0'; help++) {
        if (*help == '\\')
            fputs("\\\\", out);
        else if (*help == '\n')
            fputs("\\n", out);
        else
            fputc(*help, out);
    }
    fputc('\n', out);
}

static void put_label_value(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

char *sk_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0, i, b;
    FILE *out;
    struct family *f;
    struct sk_metric *m;
    struct http_hist *h;
    uint64_t cum;
    int64_t sum;

    out = open_memstream(&buf, &size);
    if (out == NULL)
        goto out;
    pthread_mutex_lock(&reg_lock);
    for (f = families; f != NULL; f = f->next) {
        if (f->series == NULL)
            continue;
        put_help(out, f->name, f->help);
        fprintf(out, "# TYPE %s %s\n", f->name, f->type == FAMILY_COUNTER ? "counter" : "gauge");
        for (m = f->series; m != NULL; m = m->next) {
            if (m->labels[0] != '\0')
                fprintf(out, "%s{%s} %lld\n", f->name, m->labels, (long long)sk_metric_value(m));
            else
                fprintf(out, "%s %lld\n", f->name, (long long)sk_metric_value(m));
        }
    }
    for (i = 0; i < MAX_LISTENERS; i++) {
        h = atomic_load_explicit(&hists[i], memory_order_acquire);
        if (h == NULL)
            break;
        if (i == 0) {
            put_help(out, DURATION_NAME, DURATION_HELP);
            fprintf(out, "# TYPE %s histogram\n", DURATION_NAME);
        }
        /* _count is the bucket total read in this scrape, so +Inf always equals it */
        sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
        cum = 0;
        for (b = 0; b <= N_BUCKETS; b++) {
            cum += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
            fprintf(out, "%s_bucket{listener=\"", DURATION_NAME);
            put_label_value(out, h->listener);
            fprintf(out, "\",le=\"%s\"} %llu\n", b < N_BUCKETS ? bucket_le[b] : "+Inf", (unsigned long long)cum);
        }
        fprintf(out, "%s_sum{listener=\"", DURATION_NAME);
        put_label_value(out, h->listener);
        fprintf(out, "\"} %lld.%06lld\n", (long long)(sum / 1000000), (long long)(sum % 1000000));
        fprintf(out, "%s_count{listener=\"", DURATION_NAME);
        put_label_value(out, h->listener);
        fprintf(out, "\"} %llu\n", (unsigned long long)cum);
    }
    pthread_mutex_unlock(&reg_lock);
    if (fclose(out) != 0) {
        free(buf);
        buf = NULL;
        goto out;
    }
    if (len != NULL)
        *len = size;
out:
    return buf;
}
