/*
 * The in-memory catalog: published and running activities (and those that ended in
 * the last SK_CATALOG_KEEP_ENDED_MS) with their items, read
 * by every buyer-facing worker without a lock and without MariaDB.
 *
 * The scheduler thread is the only writer: each tick it builds a new immutable
 * snapshot from MariaDB and swaps it in with one atomic store. Readers load the
 * current snapshot and may use it for SK_CATALOG_GRACE_MS after it was replaced;
 * the writer frees a replaced snapshot only after that. A request that waits on
 * the network keeps ids, not pointers, and looks them up again when it resumes.
 *
 * The per-item live fields (sold_out, remaining) are atomics shared by all workers;
 * a new snapshot starts from the old snapshot's values for the same item.
 */
#ifndef SK_CATALOG_H
#define SK_CATALOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db/activity_store.h"

#define SK_CATALOG_GRACE_MS 30000
/* Ended sales stay in the catalog this long (their buyers get "ended"). */
#define SK_CATALOG_KEEP_ENDED_MS (3600LL * 1000)

struct sk_catalog_item {
    struct sk_item item;           /* as stored */
    struct sk_catalog_activity *activity;
    atomic_int sold_out;           /* a worker saw SOLD_OUT; cleared when stock comes back */
    atomic_llong remaining;        /* approximate units left (last reply seen) */
    atomic_llong initial;          /* units published plus units added */
};

struct sk_catalog_activity {
    uint64_t id;
    char name[257];
    enum sk_activity_state state;  /* published or running as MariaDB had it */
    int64_t publish_at_ms, starts_at_ms, ends_at_ms;
    size_t n_items;
    struct sk_catalog_item *items; /* inside the snapshot */
};

struct sk_catalog_snapshot {
    size_t n_activities;
    struct sk_catalog_activity *activities;   /* by id, ascending */
    size_t n_items;
    struct sk_catalog_item **items_by_id;     /* by item id, ascending */
    int64_t built_at_ms;
    int64_t retired_at_ms;                    /* writer's bookkeeping */
    struct sk_catalog_snapshot *next_retired;
};

struct sk_catalog;

struct sk_catalog *sk_catalog_new(void);
/* Free the catalog and every snapshot; no reader may be running. */
void sk_catalog_free(struct sk_catalog *c);

/* Writer (one thread): make the activities in `acts` (published, running and
 * ended ones; others are ignored) the current snapshot. The activities are copied. SK_ERR only
 * when out of memory (the old snapshot stays). */
int sk_catalog_replace(struct sk_catalog *c, const struct sk_activity *acts, size_t n, int64_t now_ms);

/* Reader: the current snapshot (never NULL after sk_catalog_new). */
const struct sk_catalog_snapshot *sk_catalog_current(struct sk_catalog *c);
/* Lookups in a snapshot; NULL when absent. */
struct sk_catalog_item *sk_catalog_item(const struct sk_catalog_snapshot *s, uint64_t item_id);
const struct sk_catalog_activity *sk_catalog_activity(const struct sk_catalog_snapshot *s, uint64_t activity_id);

/* The effective state at now_ms: a published activity past starts_at is running
 * and anything past ends_at has ended, whatever the last tick wrote. */
enum sk_activity_state sk_catalog_state(const struct sk_catalog_activity *a, int64_t now_ms);

#endif
