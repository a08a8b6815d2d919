/*
 * The reservation-log reader shared by the queue plugins: follows the reservation
 * logs that the redis stock plugin appends to (one stream per item,
 * "<prefix>:{item:<id>}:log", fields order_no user_id activity_id item_id seq
 * price_cents reserved_at_ms expires_at_ms — see docs/plugins.md) with a Redis
 * consumer group, so that every entry is delivered at least once to one consumer
 * of the group and never lost:
 *
 *   - read: XREADGROUP over the items' logs (creating the group on a log the first
 *     time, from its start), plus XAUTOCLAIM of entries another consumer took and
 *     left pending for longer than claim_idle_ms (a consumer that died);
 *   - ack: XACK, then XDEL of the acknowledged entries (the log does not grow
 *     without bound);
 *   - nack: nothing is acknowledged; the entries stay pending and are claimed
 *     again after claim_idle_ms;
 *   - lag: for each log, entries not yet acknowledged by the group (XINFO GROUPS'
 *     lag plus pending).
 *
 * Entries that are not reservations (missing or malformed fields) come back as
 * bad records of the batch and are acknowledged with it.
 *
 * One reader runs on one loop, over its own Redis connection (plugins/common/
 * redis_conn.h), and everything here runs on that loop's thread. Internal to the
 * plugins (hidden symbols), not part of the public plugin ABI.
 */
#ifndef SK_RESLOG_H
#define SK_RESLOG_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>
#include <uv.h>

#include "redis_conn.h"

struct sk_reslog_conf {
    struct sk_rconn_conf redis; /* where the stock plugin keeps the logs */
    char key_prefix[64];        /* the stock plugin's key_prefix ("sk") */
    char group[64];             /* consumer group, e.g. "seckill-orders" */
    char consumer[128];         /* this consumer's name, unique per daemon */
    unsigned claim_idle_ms;     /* take over entries pending this long elsewhere */
};

struct sk_reslog;

/* Open a reader on `loop` (copies conf; host and m outlive the reader). SK_ERR with
 * errbuf (SK_ERRLEN) on failure, *out untouched. */
int sk_reslog_open(uv_loop_t *loop, const struct sk_reslog_conf *conf, const struct sk_host *host,
                   const struct sk_rconn_metrics *m, struct sk_reslog **out, char *errbuf);
int sk_reslog_ready(const struct sk_reslog *r);

/* Deliver up to max entries of the items' logs, waiting up to block_ms for new ones.
 * SK_OK: cb runs exactly once, later (batch valid during cb; its ack_token until
 * sk_reslog_ack/nack). SK_ERR: cb never runs. */
int sk_reslog_read(struct sk_reslog *r, const uint64_t *items, size_t n_items, size_t max, unsigned block_ms,
                   sk_queue_batch_cb cb, void *arg);
/* Acknowledge a batch (XACK, then XDEL, on each log the batch came from). SK_OK:
 * the token is consumed (freed) whatever the outcome, and cb runs exactly once,
 * later (on SK_ERR in cb, what was not acknowledged is delivered again after
 * claim_idle_ms). SK_ERR (r closing, no token, out of memory): cb never runs and
 * the token stays the caller's, to ack again or nack. */
int sk_reslog_ack(struct sk_reslog *r, void *ack_token, sk_queue_done_cb cb, void *arg);
/* Free the token without acknowledging anything (NULL is fine). */
void sk_reslog_nack(struct sk_reslog *r, void *ack_token);
/* The backlog of the items' logs, summed: cb(lag) once, later. */
int sk_reslog_lag(struct sk_reslog *r, const uint64_t *items, size_t n_items, sk_queue_lag_cb cb, void *arg);

/* Append reservations to their items' logs (XADD with the fields above). cb(SK_OK)
 * once Redis has answered every XADD (durable when its AOF is fsynced before the
 * reply, as the project's Redis is); SK_ERR when any failed (some may be in). A
 * record that could not be read back (empty order number, one over 127 bytes) fails
 * the call through cb before anything is sent. n == 0 succeeds. */
int sk_reslog_append(struct sk_reslog *r, const struct sk_reservation *records, size_t n, sk_queue_done_cb cb,
                     void *arg);

/* Counters the reader adds to (any may be NULL; owned by the host, and they
 * outlive the reader). */
struct sk_reslog_metrics {
    struct sk_metric *delivered; /* reservations delivered by sk_reslog_read */
    struct sk_metric *bad;       /* bad records delivered */
    struct sk_metric *acked;     /* entries acknowledged (XACK answered) */
    struct sk_metric *claimed;   /* entries taken over from an idle consumer (XAUTOCLAIM) */
    struct sk_metric *appended;  /* entries appended by sk_reslog_append */
};

/* Count into m from now on (copied). Added after the first cut of this header;
 * without it the reader counts nothing but the connection metrics given to open. */
void sk_reslog_set_metrics(struct sk_reslog *r, const struct sk_reslog_metrics *m);

/* Close: callbacks pending fail with SK_ERR; tokens not acked are nacked. */
void sk_reslog_close(struct sk_reslog *r);

#endif
