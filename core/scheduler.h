/*
 * The scheduler: moves activities through scheduled → published → running → ended
 * at their times, and publishes items and stock through the stock plugin.
 *
 * Runs on its own thread and loop, with its own MariaDB connection (it blocks on
 * MariaDB there, never on a buyer's loop). Every state change is a compare-and-set
 * in MariaDB and publishing is idempotent in the stock store, so several daemons
 * may run schedulers at once and a restart picks up where the last run stopped.
 */
#ifndef SK_SCHEDULER_H
#define SK_SCHEDULER_H

struct sk_daemon;
struct sk_scheduler;

/* Start the thread; the first tick runs at once. NULL with err (SK_ERRLEN). */
struct sk_scheduler *sk_sched_start(struct sk_daemon *d, char *err);
/* Ask for a tick as soon as possible (e.g. after an operator published); any thread. */
void sk_sched_wake(struct sk_scheduler *s);
/* Stop the thread (work in flight is abandoned safely: it is redone by the next
 * run, idempotently) and free. NULL is fine. */
void sk_sched_stop(struct sk_scheduler *s);

#endif
