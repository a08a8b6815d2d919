/*
 * The console's model: what the daemon's admin API last answered, as plain structs,
 * and what went wrong when it did not. No terminal and no network here: answers
 * come in as (status, body) pairs, so the Check suite feeds them directly.
 *
 * Parsing is strict and all-or-nothing: a body of the wrong shape leaves the data
 * that was there before and records "bad answer from the daemon: <where>: <what>".
 * Nothing a daemon answers can crash the console.
 *
 * Times are milliseconds since the epoch (UTC), -1 when absent; money is cents.
 */
#ifndef SK_CON_MODEL_H
#define SK_CON_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define SK_CON_MSGLEN 256

/* Sizes of the admin API's strings (docs/api.md) plus the NUL; longer answers are
 * cut at a character boundary. */
#define SK_CON_NAME_SIZE     257
#define SK_CON_SKU_SIZE      65
#define SK_CON_TITLE_SIZE    257
#define SK_CON_REASON_SIZE   257
#define SK_CON_ORDER_NO_SIZE 64

/* --- answers ------------------------------------------------------------------- */

/* One answer of the admin API as the network layer got it. */
struct sk_con_answer {
    long status;      /* HTTP status; 0 when the request failed in transport */
    const char *body; /* not NUL-terminated; may be NULL when len is 0 */
    size_t len;
    const char *transport; /* what failed (curl's sentence) when status is 0 */
};

enum sk_con_outcome {
    SK_CON_OK,           /* 2xx */
    SK_CON_UNREACHABLE,  /* no answer: daemon down, refused, timed out */
    SK_CON_UNAUTHORIZED, /* 401: the console's token is wrong */
    SK_CON_UNAVAILABLE,  /* 404 not_found "no such resource…": the daemon lacks the route */
    SK_CON_REFUSED,      /* another 4xx: the daemon said why (validation, conflict…) */
    SK_CON_FAILED,       /* 5xx */
    SK_CON_BAD_ANSWER    /* 2xx whose body is not what the API promises */
};

/* Sort an answer into an outcome and, unless SK_CON_OK, write the sentence an
 * operator should read into msg: "daemon unreachable: <why>", "bad admin token
 * (401): <daemon's message>", "not available on this daemon", "<daemon's message>
 * (409 conflict)", "daemon answered 502 without a JSON error". */
enum sk_con_outcome sk_con_classify(const struct sk_con_answer *a, char *msg, size_t msglen);

/* --- data ---------------------------------------------------------------------- */

enum sk_con_act_state {
    SK_CON_ACT_DRAFT,
    SK_CON_ACT_SCHEDULED,
    SK_CON_ACT_PUBLISHED,
    SK_CON_ACT_RUNNING,
    SK_CON_ACT_ENDED,
    SK_CON_ACT_CANCELLED,
    SK_CON_ACT_UNKNOWN /* a state this console does not know (a newer daemon) */
};
/* "draft"… and "?" for SK_CON_ACT_UNKNOWN. */
const char *sk_con_act_state_name(enum sk_con_act_state s);
/* May it still be edited or deleted (draft, scheduled)? */
int sk_con_act_editable(enum sk_con_act_state s);

struct sk_con_item {
    uint64_t id;
    char sku[SK_CON_SKU_SIZE];
    char title[SK_CON_TITLE_SIZE];
    int64_t price_cents;
    int64_t seckill_price_cents;
    int64_t stock;
    int64_t per_user_limit;
};

struct sk_con_activity {
    uint64_t id;
    char name[SK_CON_NAME_SIZE];
    enum sk_con_act_state state;
    int64_t publish_at, starts_at, ends_at, created_at, updated_at;
    struct sk_con_item *items; /* owned, n_items of them */
    size_t n_items;
};

struct sk_con_activity_list {
    struct sk_con_activity *v; /* owned, newest first as the daemon lists them */
    size_t n;
};

/* Parse one activity object (the answer of create, get, update, publish, cancel).
 * SK_OK fills *out (caller frees with sk_con_activity_free); SK_ERR writes where
 * the shape is wrong into err and leaves *out untouched. */
int sk_con_parse_activity(const char *body, size_t len, struct sk_con_activity *out, char *err, size_t errlen);
void sk_con_activity_free(struct sk_con_activity *a);
/* Deep copy; aborts on out-of-memory like every set-up allocation of the console. */
void sk_con_activity_copy(struct sk_con_activity *dst, const struct sk_con_activity *src);

struct sk_con_stock_item {
    uint64_t item_id;
    char sku[SK_CON_SKU_SIZE];
    int64_t initial, remaining, reserved, paid;
    int published;
    char sale_state[16]; /* open, paused, closed, unpublished (as the daemon says) */
    double rate;         /* reservations/s since the previous snapshot */
    int has_rate;        /* 0 on the first snapshot of an item */
};

struct sk_con_stock {
    uint64_t activity_id;
    enum sk_con_act_state state;
    struct sk_con_stock_item *items; /* owned */
    size_t n;
    int64_t at_mono_ms; /* when the answer arrived (monotonic) */
};

/* An order's status; SK_CON_ORD_COUNT is the number of them. */
enum sk_con_ord_status {
    SK_CON_ORD_RESERVED,
    SK_CON_ORD_CREATED,
    SK_CON_ORD_PAYING,
    SK_CON_ORD_PAID,
    SK_CON_ORD_CLOSED,
    SK_CON_ORD_COUNT
};
const char *sk_con_ord_status_name(enum sk_con_ord_status s);
/* SK_OK and *out for "reserved"…"closed"; SK_ERR otherwise. */
int sk_con_ord_status_parse(const char *name, enum sk_con_ord_status *out);

#define SK_CON_MAX_PLUGINS 8
struct sk_con_stats {
    int64_t uptime_s;
    double requests_per_s, latency_p50_ms, latency_p99_ms, reservations_per_s;
    int64_t queue_lag;                          /* -1: no queue (the daemon said null) */
    int64_t orders_by_status[SK_CON_ORD_COUNT]; /* -1 where the daemon gave none */
    struct {
        char kind[32];
        char name[32];
        int ready;
    } plugins[SK_CON_MAX_PLUGINS];
    size_t n_plugins;
    int mariadb; /* 1 up, 0 down, -1 not said */
};

struct sk_con_order {
    char order_no[SK_CON_ORDER_NO_SIZE];
    uint64_t activity_id, item_id, user_id;
    enum sk_con_ord_status status;
    int64_t amount_cents;
    int64_t reserved_at, expires_at;
};

struct sk_con_order_list {
    struct sk_con_order *v; /* owned */
    size_t n;
};

struct sk_con_bl_entry {
    uint64_t user_id;
    char reason[SK_CON_REASON_SIZE];
    int64_t added_at;
};

struct sk_con_blacklist {
    struct sk_con_bl_entry *v; /* owned */
    size_t n;
};

/* Is the order still open, so that a timeout applies (reserved, created, paying)? */
int sk_con_order_open(enum sk_con_ord_status s);
/* Operator text for the time an order has left: "14m59s", "expired", or "-" for
 * paid and closed orders. Returns buf. */
char *sk_con_order_time_left(const struct sk_con_order *o, int64_t now_ms, char *buf, size_t len);

/* --- the model: every resource the console shows, with its fetch state --------- */

enum sk_con_res_kind {
    SK_CON_RES_ACTIVITIES, /* GET /admin/v1/activities */
    SK_CON_RES_STOCK,      /* GET /admin/v1/activities/{id}/stock */
    SK_CON_RES_STATS,      /* GET /admin/v1/stats */
    SK_CON_RES_ORDERS,     /* GET /admin/v1/orders?… */
    SK_CON_RES_BLACKLIST,  /* GET /admin/v1/blacklist */
    SK_CON_RES_COUNT
};

/* What the console knows about fetching one resource. */
struct sk_con_res {
    int loaded;               /* data has been filled at least once */
    int unavailable;          /* the daemon lacks the route (last answer) */
    int pending;              /* a request is in flight (set by the caller) */
    enum sk_con_outcome last; /* outcome of the last answer */
    char err[SK_CON_MSGLEN];  /* "" after a good answer, else the operator's sentence */
    int64_t at_mono_ms;       /* when the last answer arrived */
};

struct sk_con_model {
    struct sk_con_res res[SK_CON_RES_COUNT];
    struct sk_con_activity_list activities;
    struct sk_con_stock stock;
    struct sk_con_stats stats;
    struct sk_con_order_list orders;
    struct sk_con_blacklist blacklist;
};

void sk_con_model_init(struct sk_con_model *m);
void sk_con_model_free(struct sk_con_model *m);

/* Take the answer to a GET of resource `kind` that arrived at now_mono_ms: good
 * data replaces the old (for stock, reservations/s per item are computed against
 * the previous snapshot of the same activity); anything else keeps the old data
 * and records the outcome and sentence in m->res[kind]. Returns the outcome. */
enum sk_con_outcome sk_con_model_apply(struct sk_con_model *m, enum sk_con_res_kind kind, const struct sk_con_answer *a,
                                       int64_t now_mono_ms);

/* The activity with `id` in the list, or NULL. The pointer is valid until the next
 * sk_con_model_apply of SK_CON_RES_ACTIVITIES. */
const struct sk_con_activity *sk_con_model_activity(const struct sk_con_model *m, uint64_t id);
/* The activity the live screen should follow when the operator chose none: the
 * first running one, else published, else scheduled, else 0. */
uint64_t sk_con_model_live_pick(const struct sk_con_model *m);
/* Next thing to happen to an activity as seen at now_ms: writes "publish", "start",
 * "end" into *what and its time into *at and returns 1; returns 0 when nothing is
 * ahead (ended, cancelled, or a draft without times to wait for). */
int sk_con_activity_next_event(const struct sk_con_activity *a, int64_t now_ms, const char **what, int64_t *at);

#endif
