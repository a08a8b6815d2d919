/* Windowed rates and latency percentiles; see stats.h. */
#include "stats.h"

#include <string.h>

#define CLIENT_LISTENER "client"
#define MIN_WINDOW_MS 1000

void sk_stats_init(struct sk_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
}

void sk_stats_destroy(struct sk_stats *st)
{
    pthread_mutex_destroy(&st->mu);
}

void sk_stats_sample(struct sk_stats *st, int64_t now_ms, int64_t reserved_total)
{
    struct sk_metrics_snapshot now;
    struct sk_stats_figures fig = {0};
    if (st->prev_ms != 0 && now_ms - st->prev_ms < MIN_WINDOW_MS)
        return;
    sk_metrics_http_snapshot(CLIENT_LISTENER, &now);
    if (st->prev_ms != 0) {
        double secs = (double)(now_ms - st->prev_ms) / 1000.0;
        fig.window_ms = now_ms - st->prev_ms;
        fig.requests_per_s = (double)(now.total - st->prev.total) / secs;
        fig.reservations_per_s = (double)(reserved_total - st->prev_reserved) / secs;
        fig.p50_us = sk_metrics_window_quantile_us(&now, &st->prev, 0.5);
        fig.p99_us = sk_metrics_window_quantile_us(&now, &st->prev, 0.99);
        pthread_mutex_lock(&st->mu);
        st->fig = fig;
        pthread_mutex_unlock(&st->mu);
    }
    st->prev = now;
    st->prev_ms = now_ms;
    st->prev_reserved = reserved_total;
}

void sk_stats_read(struct sk_stats *st, struct sk_stats_figures *out)
{
    pthread_mutex_lock(&st->mu);
    *out = st->fig;
    pthread_mutex_unlock(&st->mu);
}
