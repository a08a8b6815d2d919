/*
 * Activities and their items in MariaDB: create, read, list, update, delete, and the
 * state changes that the admin API and the scheduler make. Blocking (see db.h).
 */
#ifndef SK_ACTIVITY_STORE_H
#define SK_ACTIVITY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

enum sk_activity_state {
    SK_ACT_DRAFT = 0,
    SK_ACT_SCHEDULED,
    SK_ACT_PUBLISHED,
    SK_ACT_RUNNING,
    SK_ACT_ENDED,
    SK_ACT_CANCELLED,
};

struct sk_item {
    uint64_t id;
    uint64_t activity_id;
    char sku[65];
    char title[257];               /* UTF-8 */
    int64_t price_cents;
    int64_t seckill_price_cents;
    int64_t stock;                 /* initial stock as created */
    uint32_t per_user_limit;
};

struct sk_activity {
    uint64_t id;
    char name[257];                /* UTF-8 */
    enum sk_activity_state state;
    int64_t publish_at_ms;         /* 0 = not set (publish by hand) */
    int64_t starts_at_ms;
    int64_t ends_at_ms;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    size_t n_items;
    struct sk_item *items;         /* owned; freed by sk_activity_free */
};


const char *sk_activity_state_name(enum sk_activity_state s);
/* SK_OK and *out on a known name, SK_ERR otherwise. */
int sk_activity_state_parse(const char *name, enum sk_activity_state *out);

void sk_activity_free(struct sk_activity *a);   /* frees items; not `a` itself */
void sk_activity_list_free(struct sk_activity *list, size_t n); /* frees all and the array */

/* Insert an activity (state draft) with its items in one transaction; fills in a->id,
 * the items' ids and activity_id, created/updated times. SK_ERR on store failure
 * (e.g. a duplicate sku within the activity) with err. */
int sk_store_activity_create(struct sk_db *db, struct sk_activity *a, char *err, size_t errlen);
/* Read one with its items into *out (caller frees with sk_activity_free).
 * SK_STORE_NOT_FOUND when absent. */
int sk_store_activity_get(struct sk_db *db, uint64_t id, struct sk_activity *out, char *err, size_t errlen);
/* List activities, newest first, with items. state_mask: bit (1 << state) per wanted
 * state, 0 for all. *out is a malloc'd array of *n activities (sk_activity_list_free). */
int sk_store_activity_list(struct sk_db *db, unsigned state_mask, struct sk_activity **out, size_t *n,
                           char *err, size_t errlen);
/* Like sk_store_activity_list with a non-zero mask, plus the activities that ended
 * at or after ended_since_ms (ms since the epoch), whatever the mask. */
int sk_store_activity_list_live(struct sk_db *db, unsigned state_mask, int64_t ended_since_ms,
                                struct sk_activity **out, size_t *n, char *err, size_t errlen);
/* Replace name, times and items of activity a->id, only while draft or scheduled
 * (SK_STORE_CONFLICT otherwise, SK_STORE_NOT_FOUND if absent). Items with an id that
 * belongs to the activity are updated, items without id are added, missing ones are
 * deleted (ids are kept). On success *a is refreshed from the store: its old items
 * array is freed with sk_activity_free and replaced, so it must be malloc'd. An item
 * id that is not one of the activity's items is an SK_ERR; nothing is changed. */
int sk_store_activity_update(struct sk_db *db, struct sk_activity *a, char *err, size_t errlen);
/* Delete while draft or scheduled (SK_STORE_CONFLICT otherwise). */
int sk_store_activity_delete(struct sk_db *db, uint64_t id, char *err, size_t errlen);
/* Compare-and-set the state: only if the current state's bit is in from_mask.
 * Sets publish_at_ms too when publish_at_ms >= 0 (pass -1 to keep it).
 * SK_OK if it changed, SK_STORE_CONFLICT if the state did not match,
 * SK_STORE_NOT_FOUND if absent. Safe with several daemons (one UPDATE … WHERE). */
int sk_store_activity_transition(struct sk_db *db, uint64_t id, unsigned from_mask, enum sk_activity_state to,
                                 int64_t publish_at_ms, char *err, size_t errlen);

#endif
