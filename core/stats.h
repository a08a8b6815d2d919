/*
 * Live daemon figures for operators: request and reservation rates and latency
 * percentiles over the last second or so, sampled by the scheduler thread and read
 * by the admin thread.
 */
#ifndef SK_STATS_H
#define SK_STATS_H

#include <pthread.h>
#include <stdint.h>

#include "metrics.h"

struct sk_stats_figures {
    double requests_per_s;      /* client listener */
    double reservations_per_s;  /* units reserved */
    int64_t p50_us, p99_us;     /* client latency over the window; 0 when idle */
    int64_t window_ms;          /* length of the window the figures cover (0 before the first) */
};

struct sk_stats {
    pthread_mutex_t mu;
    struct sk_stats_figures fig;          /* under mu */
    struct sk_metrics_snapshot prev;      /* sampler only */
    int64_t prev_ms, prev_reserved;       /* sampler only */
};

void sk_stats_init(struct sk_stats *st);
void sk_stats_destroy(struct sk_stats *st);
/* Sampler (one thread): recompute the figures when at least a second has passed
 * since the last sample. reserved_total is the count of units reserved so far. */
void sk_stats_sample(struct sk_stats *st, int64_t now_ms, int64_t reserved_total);
/* Any thread: the latest figures. */
void sk_stats_read(struct sk_stats *st, struct sk_stats_figures *out);

#endif
