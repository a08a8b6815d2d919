/*
 * The order closer: gives back the units of orders that are not paid in time.
 *
 * One thread with its own loop, MariaDB connection and stock (and payment, when
 * configured) plugin connections. Every second it works through, one order at a
 * time:
 *   1. unpaid orders past expires_at: the trade is queried first (a late payment is
 *      never lost: a paid trade makes the order paid), then closed at the gateway; the
 *      order becomes closed (compare-and-set: a paid order is never closed) and its
 *      unit goes back to the stock store (the release is exactly-once per order);
 *   2. closed orders whose unit did not make it back (the stock store was down);
 *   3. orders in `paying` whose notify never came: settled by querying the gateway;
 *   4. refunds of late payments still to make.
 * Several daemons may run closers at once: every step is idempotent.
 */
#ifndef SK_ORDER_CLOSER_H
#define SK_ORDER_CLOSER_H

struct sk_daemon;
struct sk_closer;

struct sk_closer *sk_closer_start(struct sk_daemon *d, char *err);
/* Ask for a round now (e.g. an operator closed an order by hand); any thread. */
void sk_closer_wake(struct sk_closer *c);
void sk_closer_stop(struct sk_closer *c);

#endif
