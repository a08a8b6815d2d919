/*
 * Batched reservations of the redis stock plugin. The reservations that one
 * connection gets for one item during one turn of its loop travel to Redis as one
 * call of the reserve script (scripts.c), sent from the loop right after that turn:
 * a sale's first second brings hundreds of reservations per turn, and Redis then
 * pays its per-command costs (reading, dispatching, writing the AOF and the fsync of
 * `appendfsync always`) once per batch instead of once per buyer. Nobody waits for a
 * batch to fill: a turn with one reservation sends a batch of one, as soon as a call
 * of its own would have gone out (hiredis writes at the next turn in both cases).
 * While `inflight` calls of an item are out, that item's next reservations wait for
 * an answer and then go out together (a group commit), so under load a batch holds
 * everything that came during a round trip.
 *
 * Each reservation still completes on its own: its callback gets its own outcome, in
 * the order the reservations were added. Everything here runs on the loop's thread.
 */
#ifndef SK_RSTOCK_RESERVE_BATCH_H
#define SK_RSTOCK_RESERVE_BATCH_H

#include <stdint.h>

#include <seckill/plugin.h>

#include "redis_conn.h"

#define SK_RBATCH_ORDER_NO_MAX 127 /* bytes of an order number */
#define SK_RBATCH_MAX 256          /* the largest batch the config may ask for */
#define SK_RBATCH_INFLIGHT_MAX 64  /* the most calls per item in flight it may ask for */

struct sk_rbatch_conf {
    const char *prefix;          /* key prefix, copied */
    unsigned max;                /* reservations per call, 1..SK_RBATCH_MAX */
    unsigned inflight;           /* calls per item in flight, 1..SK_RBATCH_INFLIGHT_MAX */
    unsigned deadline_ms;        /* how long after a batch opens Redis may still run it */
    struct sk_metric *batches;   /* reserve calls sent (may be NULL); owned by the host */
    struct sk_metric *reserved;  /* reservations sent in them (may be NULL) */
    const struct sk_host *host;  /* for the metrics; outlives the set */
};

/* The batches of one connection. */
struct sk_rbatch_set;

/* Make the set of connection rc (which must outlive it until sk_rbatch_set_close).
 * SK_ERR when memory runs out (*out untouched). */
int sk_rbatch_set_new(struct sk_rconn *rc, const struct sk_rbatch_conf *conf, struct sk_rbatch_set **out);

/* Add a reservation (req is copied; its order number must be 1 to
 * SK_RBATCH_ORDER_NO_MAX bytes, which the caller checks). SK_OK: cb runs exactly
 * once, later, from the loop, with the reservation's own reply (reply->order points
 * to the new or, for a retry, the held order when RESERVED). SK_ERR (cb never runs)
 * when the set is closing or memory ran out. */
int sk_rbatch_add(struct sk_rbatch_set *set, const struct sk_reserve_req *req, sk_stock_cb cb, void *arg);

/* Fail every reservation not yet sent ("redis connection closed") and free the set
 * (now, or from the loop when a flush is already due: call sk_rconn_close on the
 * connection right after, which runs it). Reservations already sent complete
 * through the connection as it closes. */
void sk_rbatch_set_close(struct sk_rbatch_set *set);

#endif
