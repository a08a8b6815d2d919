/*
 * The order writer: turns every reservation into exactly one MariaDB order.
 *
 * One thread with its own loop, queue-plugin connection and MariaDB connection. It
 * consumes batches of reservations from the queue plugin (at least once), inserts
 * them idempotently in one transaction (a redelivered reservation is a no-op: unique
 * order number and (activity, item, user, seq)), and acknowledges the batch only
 * after the commit. When MariaDB is down it keeps the batch, retries with back-off
 * and consumes nothing more meanwhile: the pipeline stalls, nothing is lost. Records
 * that cannot become orders are parked in parked_records and acknowledged.
 */
#ifndef SK_ORDER_WRITER_H
#define SK_ORDER_WRITER_H

#include <stdint.h>

struct sk_daemon;
struct sk_writer;

/* Start the thread (the queue plugin must be loaded: d->queue). NULL with err
 * (SK_ERRLEN) on failure. */
struct sk_writer *sk_writer_start(struct sk_daemon *d, char *err);
/* Stop: a batch being written is finished or given back (never half-acknowledged),
 * then the thread ends. NULL is fine. */
void sk_writer_stop(struct sk_writer *w);

/* Figures for stats and metrics (any thread). */
int64_t sk_writer_lag(const struct sk_writer *w);       /* -1 until first measured */
int64_t sk_writer_written(const struct sk_writer *w);   /* orders inserted since start */

#endif
