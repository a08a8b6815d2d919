/* The lock-free catalog; see catalog.h. */
#include "catalog.h"

#include <stdlib.h>
#include <string.h>

struct sk_catalog {
    _Atomic(struct sk_catalog_snapshot *) current;
    struct sk_catalog_snapshot *retired;  /* writer only */
};

static void snapshot_free(struct sk_catalog_snapshot *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_activities; i++)
        free(s->activities[i].items);
    free(s->activities);
    free(s->items_by_id);
    free(s);
}

static struct sk_catalog_snapshot *snapshot_empty(void)
{
    return calloc(1, sizeof(struct sk_catalog_snapshot));
}

struct sk_catalog *sk_catalog_new(void)
{
    struct sk_catalog *c = calloc(1, sizeof(*c));
    struct sk_catalog_snapshot *s = snapshot_empty();
    if (c == NULL || s == NULL) {
        free(c);
        free(s);
        return NULL;
    }
    atomic_store(&c->current, s);
    return c;
}

void sk_catalog_free(struct sk_catalog *c)
{
    if (c == NULL)
        return;
    snapshot_free(atomic_load(&c->current));
    while (c->retired) {
        struct sk_catalog_snapshot *next = c->retired->next_retired;
        snapshot_free(c->retired);
        c->retired = next;
    }
    free(c);
}

static int cmp_activity(const void *a, const void *b)
{
    uint64_t x = ((const struct sk_catalog_activity *)a)->id, y = ((const struct sk_catalog_activity *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_item(const void *a, const void *b)
{
    uint64_t x = (*(struct sk_catalog_item *const *)a)->item.id, y = (*(struct sk_catalog_item *const *)b)->item.id;
    return x < y ? -1 : x > y;
}

int sk_catalog_replace(struct sk_catalog *c, const struct sk_activity *acts, size_t n, int64_t now_ms)
{
    struct sk_catalog_snapshot *old = atomic_load(&c->current);
    struct sk_catalog_snapshot *s = snapshot_empty();
    size_t n_items = 0, k = 0;
    if (s == NULL)
        return SK_ERR;
    s->built_at_ms = now_ms;
    if (n > 0 && (s->activities = calloc(n, sizeof(*s->activities))) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const struct sk_activity *a = &acts[i];
        if (a->state != SK_ACT_PUBLISHED && a->state != SK_ACT_RUNNING && a->state != SK_ACT_ENDED)
            continue;
        struct sk_catalog_activity *ca = &s->activities[s->n_activities];
        ca->items = calloc(a->n_items ? a->n_items : 1, sizeof(*ca->items));
        if (ca->items == NULL)
            goto fail;
        s->n_activities++;
        ca->id = a->id;
        memcpy(ca->name, a->name, sizeof(ca->name));
        ca->state = a->state;
        ca->publish_at_ms = a->publish_at_ms;
        ca->starts_at_ms = a->starts_at_ms;
        ca->ends_at_ms = a->ends_at_ms;
        ca->n_items = a->n_items;
        n_items += a->n_items;
    }
    if (s->n_activities > 1)
        qsort(s->activities, s->n_activities, sizeof(*s->activities), cmp_activity);
    if (n_items > 0 && (s->items_by_id = calloc(n_items, sizeof(*s->items_by_id))) == NULL)
        goto fail;
    for (size_t i = 0; i < s->n_activities; i++) {
        struct sk_catalog_activity *ca = &s->activities[i];
        const struct sk_activity *a = NULL;
        for (size_t j = 0; j < n && a == NULL; j++)
            if (acts[j].id == ca->id)
                a = &acts[j];
        for (size_t j = 0; j < ca->n_items; j++) {
            struct sk_catalog_item *ci = &ca->items[j];
            ci->item = a->items[j];
            ci->activity = ca;
            /* live fields carry over from the snapshot being replaced */
            const struct sk_catalog_item *prev = sk_catalog_item(old, ci->item.id);
            atomic_init(&ci->sold_out, prev ? atomic_load(&prev->sold_out) : 0);
            atomic_init(&ci->remaining, prev ? atomic_load(&prev->remaining) : ci->item.stock);
            atomic_init(&ci->initial, prev ? atomic_load(&prev->initial) : ci->item.stock);
            s->items_by_id[k++] = ci;
        }
    }
    s->n_items = k;
    if (s->n_items > 1)
        qsort(s->items_by_id, s->n_items, sizeof(*s->items_by_id), cmp_item);

    atomic_store(&c->current, s);
    old->retired_at_ms = now_ms;
    old->next_retired = c->retired;
    c->retired = old;
    /* free what no reader can still hold */
    for (struct sk_catalog_snapshot **pp = &c->retired; *pp;) {
        if (now_ms - (*pp)->retired_at_ms >= SK_CATALOG_GRACE_MS) {
            struct sk_catalog_snapshot *dead = *pp;
            *pp = dead->next_retired;
            snapshot_free(dead);
        } else {
            pp = &(*pp)->next_retired;
        }
    }
    return SK_OK;
fail:
    snapshot_free(s);
    return SK_ERR;
}

const struct sk_catalog_snapshot *sk_catalog_current(struct sk_catalog *c)
{
    return atomic_load_explicit(&c->current, memory_order_acquire);
}

struct sk_catalog_item *sk_catalog_item(const struct sk_catalog_snapshot *s, uint64_t item_id)
{
    size_t lo = 0, hi = s->n_items;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t id = s->items_by_id[mid]->item.id;
        if (id == item_id)
            return s->items_by_id[mid];
        if (id < item_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct sk_catalog_activity *sk_catalog_activity(const struct sk_catalog_snapshot *s, uint64_t activity_id)
{
    size_t lo = 0, hi = s->n_activities;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t id = s->activities[mid].id;
        if (id == activity_id)
            return &s->activities[mid];
        if (id < activity_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

enum sk_activity_state sk_catalog_state(const struct sk_catalog_activity *a, int64_t now_ms)
{
    if (now_ms >= a->ends_at_ms)
        return SK_ACT_ENDED;
    if (now_ms >= a->starts_at_ms)
        return SK_ACT_RUNNING;
    return SK_ACT_PUBLISHED;
}
