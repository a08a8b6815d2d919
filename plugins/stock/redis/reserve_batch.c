/*
 * Batched reservations; see reserve_batch.h, and scripts.c for what Redis does
 * with a batch.
 *
 At most conf.inflight calls per item in flight: while they are on their way, that
 * item's new reservations wait in the next batch and go out when an answer comes
 * back (group commit). Under load this is what makes batches large: each call
 * carries everything that came meanwhile, and Redis runs (and, with `appendfsync
 * always`, fsyncs) a few calls per item per round trip instead of one per turn.
 * Two in flight (the default) keep Redis busy while the daemon reads an answer and
 * sends the next call: with one, Redis would wait for the daemon between calls,
 * which costs more than the larger batches save when the fsync is slow. At low
 * load nothing waits.
 *
 * Lifetimes: a batch is owned by the set's pending list until it is sent, then by
 * its reserve call (freed in on_reply, after every reservation's callback); while
 * in flight it is also on the set's sent list, which only points at it. The set is
 * freed by sk_rbatch_set_close, or by the flush it has scheduled when one is due
 * (sk_rconn_defer always runs its callback, also when the connection closes), or
 * by send_ready when a callback closed it while it was sending; the batches still
 * in flight then lose their pointer to it (b->set = NULL).
 */
#include "reserve_batch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scripts.h"
#include "say.h"

#define NUM_LEN 24 /* a 64-bit integer in decimal, with its sign and NUL */

/* One reservation waiting for its batch to come back. */
struct entry {
    sk_stock_cb cb;
    void *arg;
    uint64_t user_id;
    char user[NUM_LEN], now[NUM_LEN], expires[NUM_LEN]; /* ARGV text */
    char order_no[SK_RBATCH_ORDER_NO_MAX + 1];
};

/* The reservations of one item (for one activity) in one turn, at most cap. */
struct batch {
    struct batch *next;
    struct sk_rbatch_set *set; /* while on the sent list; NULL once the set is gone */
    uint64_t activity_id, item_id;
    char activity[NUM_LEN], item[NUM_LEN], deadline[NUM_LEN];
    size_t n, cap;
    struct entry e[];
};

struct sk_rbatch_set {
    struct sk_rconn *rc;
    struct sk_rbatch_conf conf;
    char prefix[64];
    struct batch *head, *tail; /* not sent yet, oldest first */
    struct batch *sent;        /* in flight, newest first */
    int flush_due;             /* a deferred flush will run */
    int sending;               /* inside send_ready: a callback may close the set */
    int closing;
    const char **args;         /* ARGV of one call: 3 + 4 * conf.max */
};

/* Decimal text of v into buf (NUM_LEN bytes): the hot path formats four numbers
 * per reservation, which printf would make a noticeable share of its cost. */
static void fmt_u64(char *buf, uint64_t v)
{
    char tmp[NUM_LEN];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
}

static void fmt_i64(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        fmt_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
    } else {
        fmt_u64(buf, (uint64_t)v);
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail_all(struct batch *b, const char *err)
{
    for (size_t i = 0; i < b->n; i++)
        b->e[i].cb(b->e[i].arg, SK_ERR, NULL, err);
}

static void free_set(struct sk_rbatch_set *set)
{
    free(set->args);
    free(set);
}

/* Answer reservation i from its seven fields f (see scripts.c). */
static void answer(const struct batch *b, size_t i, long long initial, long long state, const long long *f)
{
    const struct entry *en = &b->e[i];
    struct sk_stock_reply out = {0};
    struct sk_stock_order order;
    char msg[SK_ERRLEN];

    if (f[0] == RS_CODE_OTHER_BUYER) {
        say(msg, "order %s of item %" PRIu64 " belongs to another buyer", en->order_no, b->item_id);
        en->cb(en->arg, SK_ERR, NULL, msg);
        return;
    }
    if (f[0] < SK_RESERVED || f[0] > SK_NOT_ON_SALE) {
        say(msg, "redis gave an unknown outcome %lld to reserve of item %" PRIu64, f[0], b->item_id);
        en->cb(en->arg, SK_ERR, NULL, msg);
        return;
    }
    out.outcome = (enum sk_reserve_outcome)f[0];
    out.initial = initial;
    out.remaining = f[1];
    out.user_count = sk_rstock_count(f[2]);
    out.state = sk_rstock_state_of(state);
    if (out.outcome == SK_RESERVED) {
        order = (struct sk_stock_order){
            .user_id = en->user_id,
            .activity_id = b->activity_id,
            .item_id = b->item_id,
            .seq = sk_rstock_count(f[3]),
            .price_cents = f[4],
            .reserved_at_ms = f[5],
            .expires_at_ms = f[6],
        };
        out.order = &order;
    }
    en->cb(en->arg, SK_OK, &out, NULL);
}

static void send_waiting(struct sk_rbatch_set *set, uint64_t activity_id, uint64_t item_id);

static void unlink_sent(struct sk_rbatch_set *set, struct batch *b)
{
    for (struct batch **p = &set->sent; *p != NULL; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            b->next = NULL;
            return;
        }
}

static void on_reply(void *arg, const redisReply *r, const char *err)
{
    struct batch *b = arg;
    char msg[SK_ERRLEN];
    long long head[5], f[RS_RESERVE_STRIDE];

    if (r == NULL) {
        fail_all(b, err);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5)
        goto bad;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            goto bad;
    for (size_t i = 0; i < 5; i++)
        head[i] = r->element[i]->integer;
    if (head[0] == RS_CODE_LATE) {
        say(msg, "redis ran the reservation of item %" PRIu64 " after its deadline; nothing was taken", b->item_id);
        fail_all(b, msg);
        goto out;
    }
    if (head[0] == SK_NOT_ON_SALE && r->elements == 5) {
        /* Not published for this activity: every reservation of the batch is refused. */
        const long long refused[RS_RESERVE_STRIDE] = {SK_NOT_ON_SALE, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < b->n; i++)
            answer(b, i, head[1], head[4], refused);
        goto out;
    }
    if (head[0] != RS_CODE_OK || r->elements != 5 + RS_RESERVE_STRIDE * b->n)
        goto bad;
    for (size_t i = 0; i < b->n; i++) {
        for (size_t k = 0; k < RS_RESERVE_STRIDE; k++)
            f[k] = r->element[5 + RS_RESERVE_STRIDE * i + k]->integer;
        answer(b, i, head[1], head[4], f);
    }
    goto out;
bad:
    say(msg, "redis gave an unexpected answer to reserve of item %" PRIu64, b->item_id);
    fail_all(b, msg);
out:
    /* The item's next batch waited while this one was out; it goes now. b stays
     * on the sent list during the callbacks, so that a callback that detaches (and
     * closes the set) clears b->set. */
    if (b->set != NULL) {
        struct sk_rbatch_set *set = b->set;
        unlink_sent(set, b);
        send_waiting(set, b->activity_id, b->item_id);
    }
    free(b);
}

/* Send one batch; from here on it completes through on_reply. */
static void send_batch(struct sk_rbatch_set *set, struct batch *b)
{
    struct sk_rstock_keys k;
    const char **args = set->args;
    size_t nargs = 3;

    sk_rstock_keys(set->prefix, b->item_id, RS_NKEYS, &k);
    args[0] = b->activity;
    args[1] = b->item;
    args[2] = b->deadline;
    for (size_t i = 0; i < b->n; i++) {
        args[nargs++] = b->e[i].user;
        args[nargs++] = b->e[i].order_no;
        args[nargs++] = b->e[i].now;
        args[nargs++] = b->e[i].expires;
    }
    if (sk_rconn_eval(set->rc, RS_RESERVE, RS_NKEYS, k.keys, nargs, args, on_reply, b) != SK_OK) {
        fail_all(b, "redis connection closed or out of memory");
        free(b);
        return;
    }
    b->set = set;
    b->next = set->sent;
    set->sent = b;
    if (set->conf.batches != NULL)
        set->conf.host->metric_add(set->conf.batches, 1);
    if (set->conf.reserved != NULL)
        set->conf.host->metric_add(set->conf.reserved, (int64_t)b->n);
}

/* Calls of this item in `list` (the sent list, or the batches about to go). */
static unsigned count_item(const struct batch *list, uint64_t activity_id, uint64_t item_id)
{
    unsigned n = 0;
    for (const struct batch *b = list; b != NULL; b = b->next)
        n += b->item_id == item_id && b->activity_id == activity_id;
    return n;
}

/* Send the waiting batches of one item (or of every item when one_item is 0), in
 * the order they were opened, as long as the item has fewer than conf.inflight
 * calls in flight; the others wait for an answer. */
static void send_ready(struct sk_rbatch_set *set, int one_item, uint64_t activity_id, uint64_t item_id)
{
    struct batch *keep = NULL, *keep_tail = NULL, *go = NULL, *go_tail = NULL;
    struct batch *b = set->head;

    set->head = set->tail = NULL;
    while (b != NULL) {
        struct batch *next = b->next;
        int mine = !one_item || (b->item_id == item_id && b->activity_id == activity_id);
        b->next = NULL;
        if (mine && count_item(set->sent, b->activity_id, b->item_id) + count_item(go, b->activity_id, b->item_id) <
                        set->conf.inflight) {
            if (go_tail != NULL)
                go_tail->next = b;
            else
                go = b;
            go_tail = b;
        } else {
            if (keep_tail != NULL)
                keep_tail->next = b;
            else
                keep = b;
            keep_tail = b;
        }
        b = next;
    }
    set->head = keep;
    set->tail = keep_tail;
    /* A batch that cannot be sent fails its reservations here, and one of their
     * callbacks may detach: the set then stays until this loop is done with it. */
    set->sending = 1;
    while (go != NULL) {
        struct batch *next = go->next;
        go->next = NULL;
        if (set->closing) {
            fail_all(go, "redis connection closed");
            free(go);
        } else {
            send_batch(set, go);
        }
        go = next;
    }
    set->sending = 0;
    if (set->closing && !set->flush_due)
        free_set(set);
}

static void send_waiting(struct sk_rbatch_set *set, uint64_t activity_id, uint64_t item_id)
{
    send_ready(set, 1, activity_id, item_id);
}

/* The deferred flush: the turn in which the batches filled is over. Batches of an
 * item with a call in flight stay; that call's answer sends them. */
static void on_flush(void *arg, const redisReply *reply, const char *err)
{
    struct sk_rbatch_set *set = arg;

    (void)reply, (void)err;
    set->flush_due = 0;
    if (set->closing) {
        if (!set->sending)
            free_set(set);
        return;
    }
    send_ready(set, 0, 0, 0);
}

int sk_rbatch_set_new(struct sk_rconn *rc, const struct sk_rbatch_conf *conf, struct sk_rbatch_set **out)
{
    struct sk_rbatch_set *set = calloc(1, sizeof(*set));
    int rc_ = SK_ERR;

    if (set == NULL || conf->max < 1 || conf->max > SK_RBATCH_MAX || conf->inflight < 1 ||
        conf->inflight > SK_RBATCH_INFLIGHT_MAX)
        goto out;
    set->args = calloc(3 + 4 * (size_t)conf->max, sizeof(*set->args));
    if (set->args == NULL)
        goto out;
    set->rc = rc;
    set->conf = *conf;
    snprintf(set->prefix, sizeof(set->prefix), "%s", conf->prefix);
    set->conf.prefix = set->prefix;
    *out = set;
    set = NULL;
    rc_ = SK_OK;
out:
    if (set != NULL)
        free(set->args);
    free(set);
    return rc_;
}

/* The batch of this item and activity that still has room, or NULL. */
static struct batch *open_batch(struct sk_rbatch_set *set, uint64_t activity_id, uint64_t item_id)
{
    for (struct batch *b = set->head; b != NULL; b = b->next)
        if (b->item_id == item_id && b->activity_id == activity_id && b->n < b->cap)
            return b;
    return NULL;
}

int sk_rbatch_add(struct sk_rbatch_set *set, const struct sk_reserve_req *req, sk_stock_cb cb, void *arg)
{
    struct batch *b;
    struct entry *en;

    if (set == NULL || set->closing)
        return SK_ERR;
    if (!set->flush_due) {
        if (sk_rconn_defer(set->rc, on_flush, set) != SK_OK)
            return SK_ERR;
        set->flush_due = 1;
    }
    b = open_batch(set, req->activity_id, req->item_id);
    if (b == NULL) {
        b = malloc(sizeof(*b) + set->conf.max * sizeof(b->e[0]));
        if (b == NULL)
            return SK_ERR; /* the flush that is due finds the other batches */
        b->next = NULL;
        b->set = NULL;
        b->activity_id = req->activity_id;
        b->item_id = req->item_id;
        fmt_u64(b->activity, req->activity_id);
        fmt_u64(b->item, req->item_id);
        /* Redis refuses a batch it runs after this (see scripts.c), so that a
         * reservation the daemon gave up on never takes a unit. */
        fmt_i64(b->deadline, wall_ms() + (int64_t)set->conf.deadline_ms);
        b->n = 0;
        b->cap = set->conf.max;
        if (set->tail != NULL)
            set->tail->next = b;
        else
            set->head = b;
        set->tail = b;
    }
    en = &b->e[b->n++];
    en->cb = cb;
    en->arg = arg;
    en->user_id = req->user_id;
    fmt_u64(en->user, req->user_id);
    fmt_i64(en->now, req->now_ms);
    fmt_i64(en->expires, req->expires_at_ms);
    snprintf(en->order_no, sizeof(en->order_no), "%s", req->order_no);
    return SK_OK;
}

void sk_rbatch_set_close(struct sk_rbatch_set *set)
{
    struct batch *b;

    if (set == NULL)
        return;
    set->closing = 1;
    /* The calls in flight complete through the connection as it closes, without
     * the set. */
    for (b = set->sent; b != NULL; b = b->next)
        b->set = NULL;
    set->sent = NULL;
    b = set->head;
    set->head = set->tail = NULL;
    while (b != NULL) {
        struct batch *next = b->next;
        fail_all(b, "redis connection closed");
        free(b);
        b = next;
    }
    if (!set->flush_due && !set->sending)
        free_set(set);
}
