/*
 * Activities and items between JSON (admin API bodies and answers) and
 * struct sk_activity, with the validation rules of SPEC §2 and §5.
 */
#ifndef SK_ACTIVITY_JSON_H
#define SK_ACTIVITY_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "core/db/activity_store.h"

/* Limits of what an operator may send. */
#define SK_MAX_ITEMS_PER_ACTIVITY 1000
#define SK_MAX_STOCK 100000000LL
#define SK_MAX_PRICE_CENTS 100000000000LL

/*
 * Build *out from a create body (base == NULL: every required field must be there)
 * or an update body (base = the stored activity: absent fields keep base's values;
 * "items", when present, is the full new list, where an item with "id" updates that
 * item of base and one without adds a new item). Unknown keys, wrong types and
 * values out of range are errors. On SK_ERR, err holds "field: problem" (e.g.
 * "items[1].stock: must be > 0") and *out is untouched; on SK_OK the caller owns
 * *out (sk_activity_free).
 */
int sk_activity_from_json(const json_t *body, const struct sk_activity *base, struct sk_activity *out, char *err,
                          size_t errlen);

/* The activity as the admin API shows it (new reference). */
json_t *sk_activity_to_json(const struct sk_activity *a);
json_t *sk_item_to_json(const struct sk_item *it);

#endif
