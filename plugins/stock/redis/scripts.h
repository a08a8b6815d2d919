/*
 * The Lua scripts of the redis stock plugin: one script per verb, so that every
 * verb is one atomic round trip (EVALSHA, EVAL when the server lost the script).
 *
 * Key layout (see docs/plugins.md): every key of an item carries the hash tag
 * {item:<id>}, so that all keys of one item land on one Redis Cluster slot and a
 * script may touch them together.
 *
 *   <prefix>:{item:<id>}:meta    hash: activity_id, limit, price_cents, starts_at_ms,
 *                                ends_at_ms, state (open|paused|closed), initial
 *   <prefix>:{item:<id>}:stock   string: units left
 *   <prefix>:{item:<id>}:buyers  hash: user_id -> units held
 *   <prefix>:{item:<id>}:orders  hash: order_no -> "user:seq:activity:price:reserved_at_ms:
 *                                expires_at_ms", one entry per held unit (the pre-order)
 *   <prefix>:{item:<id>}:log     stream: one entry per reservation
 *   <prefix>:{item:<id>}:seq     hash: user_id -> units ever reserved (never decreases,
 *                                so a buyer's n-th unit keeps its number after a release)
 *
 * Every script answers the same shape, an array of at least five integers:
 *   { code, initial, remaining, user_count, state, … }
 * where state is 0 open, 1 paused, 2 closed, -1 unknown (item not published), and
 * code is the script's own (see each script in scripts.c and RS_CODE_* below).
 * get_order adds the order: { …, user, seq, activity, price, reserved_at_ms,
 * expires_at_ms }; release adds { …, changed }; reserve, which takes a batch of
 * reservations of one item, adds seven integers per reservation (see scripts.c).
 */
#ifndef SK_RSTOCK_SCRIPTS_H
#define SK_RSTOCK_SCRIPTS_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>

enum sk_rstock_script { RS_PUBLISH = 0, RS_QUERY, RS_SET_STATE, RS_ADD_UNITS, RS_RESERVE, RS_RELEASE, RS_GET_ORDER, RS_NSCRIPTS };

/* The keys of one item, in the order every script expects them in KEYS. */
enum sk_rstock_key { RS_KEY_META = 0, RS_KEY_STOCK, RS_KEY_BUYERS, RS_KEY_ORDERS, RS_KEY_LOG, RS_KEY_SEQ, RS_NKEYS };

/* Codes of the first reply element besides the reserve outcomes (which are the
 * values of enum sk_reserve_outcome, 0..6). */
#define RS_CODE_OK 0
#define RS_CODE_NOT_PUBLISHED 1   /* query, set_state, add_units */
#define RS_CODE_CLOSED_FOR_GOOD 2 /* set_state: a closed item cannot be reopened */
#define RS_CODE_OTHER_BUYER 7     /* reserve, release: the order number belongs to someone else */
#define RS_CODE_NO_ORDER 8        /* get_order: the store does not hold that order */
#define RS_CODE_LATE 9            /* reserve: ran after its deadline; nothing was taken */

/* Fields per reservation in the reply of reserve, after the five common ones. */
#define RS_RESERVE_STRIDE 7

struct sk_rstock_script_def {
    const char *name; /* for logs: "reserve" */
    const char *text; /* the Lua source; static */
    size_t nkeys;     /* how many of the item's keys it takes, from RS_KEY_META on */
};

#define SK_RSTOCK_KEY_MAX 128 /* bytes of one key name, with its NUL */

/* The first nkeys (<= RS_NKEYS) key names of an item, in KEYS order: keys[i]
 * points into buf[i]. */
struct sk_rstock_keys {
    char buf[RS_NKEYS][SK_RSTOCK_KEY_MAX];
    const char *keys[RS_NKEYS];
};

/* Write the names "<prefix>:{item:<id>}:<suffix>" of the item's first nkeys keys. */
void sk_rstock_keys(const char *prefix, uint64_t item_id, size_t nkeys, struct sk_rstock_keys *out);

/* A count from a reply (units held, seq) as the ABI's uint32_t, clamped. */
uint32_t sk_rstock_count(long long v);

/* The sale state of a script's state field (0, 1, 2; -1, not published, reads as
 * closed: nothing can be bought). */
enum sk_stock_state sk_rstock_state_of(long long code);

/* Indexed by enum sk_rstock_script. Static data. */
extern const struct sk_rstock_script_def sk_rstock_scripts[RS_NSCRIPTS];

#endif
