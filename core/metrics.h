/*
 * Process-wide metrics in Prometheus text format. Counters and gauges are atomics;
 * registration takes a lock and happens at start-up or on a route's first use.
 */
#ifndef SK_METRICS_H
#define SK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>

/* Set up and tear down the registry (main thread, before/after the workers). */
int sk_metrics_init(void);
void sk_metrics_free(void);

/* A counter or gauge named `name` with labels `labels` (e.g. `route="/healthz",status="200"`,
 * or "" for none). Same name and labels give the same metric. Never NULL (aborts on OOM). */
struct sk_metric *sk_metric_counter(const char *name, const char *labels, const char *help);
struct sk_metric *sk_metric_gauge(const char *name, const char *labels, const char *help);
void sk_metric_add(struct sk_metric *m, int64_t delta);
void sk_metric_set(struct sk_metric *m, int64_t value);
int64_t sk_metric_value(const struct sk_metric *m);

/* HTTP request accounting: count by route pattern and status, and observe latency
 * in the seckill_http_request_duration_seconds histogram (per listener). */
void sk_metrics_http(const char *listener, const char *route, int status, int64_t duration_us);
/* Latency quantile (0 < q < 1) in microseconds over everything observed on `listener`
 * (from the histogram buckets), for stats pages. 0 when nothing was observed, -1 for
 * a q outside (0, 1). */
int64_t sk_metrics_http_quantile_us(const char *listener, double q);

/* A copy of one listener's latency histogram, to compute figures over a window
 * (the difference of two snapshots) rather than since start. */
#define SK_METRICS_MAX_BUCKETS 16
struct sk_metrics_snapshot {
    uint64_t counts[SK_METRICS_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t total;                          /* requests observed */
};
void sk_metrics_http_snapshot(const char *listener, struct sk_metrics_snapshot *out);
/* The q-quantile in microseconds of what was observed between older and newer
 * (older NULL: since start); 0 when nothing was, -1 for q outside (0, 1). */
int64_t sk_metrics_window_quantile_us(const struct sk_metrics_snapshot *newer, const struct sk_metrics_snapshot *older,
                                      double q);

/* Render everything as Prometheus text; the caller frees the result with free(). */
char *sk_metrics_render(size_t *len);

#endif
