/*
 * seckill plugin ABI — the one public header of seckill.
 *
 * A plugin is a shared object that exports exactly one symbol, SK_PLUGIN_SYMBOL
 * ("sk_plugin"), a `const struct sk_plugin` that describes it. The host dlopen()s
 * the file named in its config, reads the descriptor and refuses it (with a message
 * that names the file and both versions) unless:
 *   - abi_major == SK_PLUGIN_ABI_MAJOR and abi_minor <= SK_PLUGIN_ABI_MINOR,
 *   - magic == SK_PLUGIN_MAGIC,
 *   - kind is the kind the config asked for, and ops->size is at least the size of
 *     that kind's ops table as of ABI 1.0.
 *
 * Versioning: the minor number grows when something is appended (a field at the end
 * of a table, a new verb); the major number grows when anything is changed or removed.
 * Tables start with their own size so that they can grow.
 *
 * Threads and loops: the host runs several libuv event loops (one per worker thread,
 * plus the admin and scheduler threads). create() is called once, on the main thread,
 * before any loop runs. attach() is called once per loop, on that loop's thread, and
 * returns a per-loop connection; every verb on that connection is called on, and
 * completes on, that loop's thread. Verbs never block: they start I/O and return,
 * and their callback runs later on the same loop (never from inside the verb call).
 *
 * Status convention: SK_OK (0) for success, SK_ERR (-1) for failure with a sentence
 * in a caller-owned buffer (errbuf, SK_ERRLEN bytes) or in the callback's `err`.
 * A verb that returns SK_OK calls its callback exactly once, later; a verb that
 * returns SK_ERR never calls it (the caller still owns `arg`).
 *
 * Build one out of tree with:
 *   cc -shared -fPIC $(pkg-config --cflags seckill-plugin) -o my.so my.c
 * and see docs/plugins.md for a walk-through.
 */
#ifndef SECKILL_PLUGIN_H
#define SECKILL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_PLUGIN_ABI_MAJOR 1
#define SK_PLUGIN_ABI_MINOR 0
#define SK_PLUGIN_MAGIC 0x534b504cu /* "SKPL" */
#define SK_PLUGIN_SYMBOL "sk_plugin"

/* Size of every error buffer that crosses this API. */
#define SK_ERRLEN 256

#define SK_OK 0
#define SK_ERR (-1)

#if defined(__GNUC__)
#define SK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SK_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SK_PRINTF(fmt, args)
#define SK_PLUGIN_EXPORT
#endif

enum sk_plugin_kind {
    SK_PLUGIN_STOCK = 1,
    SK_PLUGIN_QUEUE = 2,
    SK_PLUGIN_PAYMENT = 3,
};

enum sk_log_level {
    SK_LOG_ERROR = 0,
    SK_LOG_WARN = 1,
    SK_LOG_INFO = 2,
    SK_LOG_DEBUG = 3,
};

/* An opaque metric owned by the host; valid until the host unloads the plugin. */
struct sk_metric;

/*
 * What the host gives a plugin: its logger, its metrics, its config section.
 * Owned by the host; valid from create() until destroy() returns. Every function
 * here is thread-safe.
 */
struct sk_host {
    uint32_t size; /* sizeof(struct sk_host) of the host that built it */
    uint16_t abi_major, abi_minor;

    /* The plugin's config section (the `config:` mapping under its entry) as a JSON
     * object text, "{}" when absent. Owned by the host. */
    const char *config_json;
    /* Where that section is, "file:line", for error messages. */
    const char *config_where;

    /* Log a line on the host's log; the host prefixes the plugin's name. */
    void (*log)(const struct sk_host *host, enum sk_log_level level, const char *fmt, ...) SK_PRINTF(3, 4);

    /* Register a metric and get a handle for it. `name` is a Prometheus metric name
     * that the host prefixes with "seckill_plugin_<plugin>_"; `help` its HELP text.
     * Registering the same name twice returns the same handle. NULL on bad names. */
    struct sk_metric *(*counter)(const struct sk_host *host, const char *name, const char *help);
    struct sk_metric *(*gauge)(const struct sk_host *host, const char *name, const char *help);
    /* Add to a counter or set a gauge; lock-free, callable from any thread. */
    void (*metric_add)(struct sk_metric *m, int64_t delta);
    void (*metric_set)(struct sk_metric *m, int64_t value);

    void *host_data; /* the host's own; plugins do not touch it */
};

/* ------------------------------------------------------------------------- */
/* Stock plugins: where the units of an item live while it is on sale.       */
/* ------------------------------------------------------------------------- */

/* An item as published for sale. Strings and the struct are owned by the caller
 * and only read during the call. Times are milliseconds since the Unix epoch. */
struct sk_stock_item {
    uint64_t activity_id;
    uint64_t item_id;
    int64_t stock;          /* initial units, > 0 */
    uint32_t per_user_limit;/* >= 1 */
    int64_t price_cents;    /* the seckill price charged for one unit */
    int64_t starts_at_ms;
    int64_t ends_at_ms;
};

/* Sale state of an item in the stock store. */
enum sk_stock_state {
    SK_STOCK_OPEN = 0,      /* buyers may reserve within the window */
    SK_STOCK_PAUSED = 1,    /* kill switch: reservations refused, nothing else changes */
    SK_STOCK_CLOSED = 2,    /* cancelled: reservations refused for good */
};

/* One reservation attempt. Owned by the caller; read during the call only. */
struct sk_reserve_req {
    uint64_t activity_id;
    uint64_t item_id;
    uint64_t user_id;
    const char *order_no;   /* unique order number chosen by the host, NUL-terminated */
    int64_t now_ms;         /* host's clock; the plugin checks the window with it */
    int64_t expires_at_ms;  /* when an unpaid reservation times out */
};

enum sk_reserve_outcome {
    SK_RESERVED = 0,
    SK_SOLD_OUT = 1,
    SK_LIMIT_REACHED = 2,
    SK_NOT_STARTED = 3,
    SK_ENDED = 4,
    SK_PAUSED = 5,
    SK_NOT_ON_SALE = 6,     /* the item is not published (or cancelled) */
};

/* A reservation as the stock store keeps it until the order pipeline owns it. */
struct sk_stock_order {
    uint64_t user_id;
    uint64_t activity_id;
    uint64_t item_id;
    uint32_t seq;           /* the buyer's n-th unit of this item, from 1; never reused,
                               so (activity, item, user, seq) names one unit for good */
    int64_t price_cents;
    int64_t reserved_at_ms;
    int64_t expires_at_ms;
};

/* A verb's result. Valid only during the callback. */
struct sk_stock_reply {
    enum sk_reserve_outcome outcome; /* reserve only */
    int64_t initial;        /* units published (plus units added), query and publish */
    int64_t remaining;      /* units left after the verb */
    uint32_t user_count;    /* reserve: units this buyer now holds */
    enum sk_stock_state state;
    int changed;            /* release: 1 if the unit came back now, 0 if it already had
                               (or the order was unknown) */
    const struct sk_stock_order *order; /* get_order: the order, NULL when the store
                               does not hold it; reserve: the new order when RESERVED */
};

/* Completion of every stock verb. status is SK_OK or SK_ERR (then `err` says why and
 * `reply` is NULL). `err` and `reply` are valid only during the callback. `arg` is
 * what the caller passed to the verb. */
typedef void (*sk_stock_cb)(void *arg, int status, const struct sk_stock_reply *reply, const char *err);

struct sk_stock_ops {
    size_t size; /* sizeof(struct sk_stock_ops) the plugin was built with */

    /* Bind the instance to an event loop; returns the per-loop connection in *conn.
     * Called on the loop's thread before the loop runs it. The connection reconnects
     * by itself when its store goes away; verbs fail fast (SK_ERR) meanwhile. */
    int (*attach)(void *instance, uv_loop_t *loop, void **conn, char *errbuf);
    /* Close the connection; pending callbacks run with SK_ERR before it returns or
     * from the loop shortly after. The loop must run until they have. */
    void (*detach)(void *conn);
    /* Is the store reachable from this connection right now? (for /readyz) */
    int (*ready)(void *conn);

    /* Publish an item: write its data and, the first time only, its stock. Publishing
     * an item that is already published never changes its stock (idempotent). */
    int (*publish)(void *conn, const struct sk_stock_item *item, sk_stock_cb cb, void *arg);
    /* Read initial and remaining units and the state of an item. */
    int (*query)(void *conn, uint64_t item_id, sk_stock_cb cb, void *arg);
    /* Change the sale state of a published item (pause, resume, close). */
    int (*set_state)(void *conn, uint64_t item_id, enum sk_stock_state state, sk_stock_cb cb, void *arg);
    /* Add units to a published item's live stock (never overwrites it). */
    int (*add_units)(void *conn, uint64_t item_id, int64_t units, sk_stock_cb cb, void *arg);

    /* The hot path: check the window, the state and the buyer's count against the
     * limit, take one unit, record the buyer, write the pre-order and append it to the
     * item's reservation log, atomically. */
    int (*reserve)(void *conn, const struct sk_reserve_req *req, sk_stock_cb cb, void *arg);
    /* Give back the unit of order `order_no` and free the buyer's slot, exactly once
     * per order however often it is called. */
    int (*release)(void *conn, uint64_t item_id, uint64_t user_id, const char *order_no, sk_stock_cb cb,
                   void *arg);
    /* Read a reservation the store still holds (reply->order, NULL if unknown). */
    int (*get_order)(void *conn, uint64_t item_id, const char *order_no, sk_stock_cb cb, void *arg);
};

/* ------------------------------------------------------------------------- */
/* Queue plugins: carry reservations from the stock store's reservation logs */
/* to the order writer, at least once.                                       */
/* ------------------------------------------------------------------------- */

/* One reservation on its way to MariaDB. Owned by whoever passes it; the strings
 * and the struct are valid only during the call or callback that carries them. */
struct sk_reservation {
    const char *order_no;
    uint64_t user_id;
    uint64_t activity_id;
    uint64_t item_id;
    uint32_t seq;           /* see struct sk_stock_order */
    int64_t price_cents;
    int64_t reserved_at_ms;
    int64_t expires_at_ms;
};

/* A record the plugin could not read as a reservation: the host logs it and parks
 * it (it never reaches the orders, and it is acknowledged with the batch). */
struct sk_queue_bad_record {
    const char *raw;        /* the record as the queue held it (text), NUL-terminated */
    const char *why;        /* what is wrong with it */
    const char *source;     /* where it came from, e.g. "sk:{item:7}:log 1700000000000-0" */
};

/* What consume() delivers. Valid only during the callback, except `ack_token`,
 * which stays valid until it is passed to ack() or nack() (or the connection is
 * detached). */
struct sk_queue_batch {
    size_t n;
    const struct sk_reservation *records;
    size_t n_bad;
    const struct sk_queue_bad_record *bad;
    void *ack_token;        /* NULL when the batch is empty (nothing to acknowledge) */
};

typedef void (*sk_queue_batch_cb)(void *arg, int status, const struct sk_queue_batch *batch, const char *err);
typedef void (*sk_queue_done_cb)(void *arg, int status, const char *err);
typedef void (*sk_queue_lag_cb)(void *arg, int status, int64_t lag, const char *err);

struct sk_queue_ops {
    size_t size; /* sizeof(struct sk_queue_ops) the plugin was built with */

    /* As for stock plugins: one connection per loop, verbs complete on that loop. */
    int (*attach)(void *instance, uv_loop_t *loop, void **conn, char *errbuf);
    void (*detach)(void *conn);
    int (*ready)(void *conn);

    /* Append reservations to the queue; cb(SK_OK) once every one of them is durable
     * there (a partial failure is SK_ERR, and the caller may publish the same records
     * again: consumers see duplicates, never gaps). */
    int (*publish)(void *conn, const struct sk_reservation *records, size_t n, sk_queue_done_cb cb, void *arg);
    /* Deliver up to `max` reservations of the given items (the items whose
     * reservation logs the consumer follows; the array is read during the call),
     * waiting at most wait_ms when none is ready. Records delivered but never
     * acknowledged (the consumer died, nack) are delivered again later, to this or
     * another consumer of the same group. An empty batch is not an error. */
    int (*consume)(void *conn, const uint64_t *item_ids, size_t n_items, size_t max, unsigned wait_ms,
                   sk_queue_batch_cb cb, void *arg);
    /* The batch's records are durable in MariaDB: never deliver them again. Frees
     * the token. */
    int (*ack)(void *conn, void *ack_token, sk_queue_done_cb cb, void *arg);
    /* Give a batch back unacknowledged (MariaDB is down): its records will be
     * delivered again. Frees the token. Never fails. */
    void (*nack)(void *conn, void *ack_token);
    /* How many reservations of these items are not acknowledged yet (the backlog). */
    int (*lag)(void *conn, const uint64_t *item_ids, size_t n_items, sk_queue_lag_cb cb, void *arg);
};

/* ------------------------------------------------------------------------- */
/* Payment plugins: trades at a payment gateway. Never on the reservation    */
/* path. Every verb is asynchronous like the others (the plugin does its I/O */
/* without blocking the loop, or on threads of its own).                    */
/* ------------------------------------------------------------------------- */

/* A trade to create. Owned by the caller; read during the call only. */
struct sk_pay_trade {
    const char *order_no;    /* the merchant's trade number (out_trade_no) */
    int64_t amount_cents;
    const char *subject;     /* what is bought, UTF-8 */
    int64_t expires_at_ms;   /* the gateway refuses payment after this */
};

enum sk_trade_status {
    SK_TRADE_NOT_FOUND = 0,  /* the gateway has no such trade (not created, or not scanned yet) */
    SK_TRADE_WAITING = 1,    /* created, not paid */
    SK_TRADE_PAID = 2,       /* paid (Alipay: TRADE_SUCCESS or TRADE_FINISHED) */
    SK_TRADE_CLOSED = 3,     /* closed unpaid (or fully refunded) */
};

/* What a gateway says about a trade. Valid only during the callback. */
struct sk_pay_result {
    enum sk_trade_status status;
    const char *order_no;
    const char *trade_no;    /* the gateway's number, "" when it has none */
    int64_t amount_cents;    /* the trade's amount as the gateway has it (-1 unknown) */
    const char *pay_url;     /* create: where to send the buyer, or NULL */
    const char *qr_code;     /* create: the QR code content, or NULL */
    int refunded;            /* refund: 1 when this call moved money, 0 when it had already */
};

typedef void (*sk_pay_cb)(void *arg, int status, const struct sk_pay_result *res, const char *err);

/* A gateway's asynchronous notify, parsed and verified. Strings point into storage
 * of the caller's (see verify_notify), valid as long as it. */
struct sk_pay_notify {
    char order_no[64];
    char trade_no[64];
    char app_id[64];
    char notify_id[128];
    enum sk_trade_status status;
    int64_t amount_cents;
    int64_t paid_at_ms;      /* 0 when not paid */
};

struct sk_payment_ops {
    size_t size; /* sizeof(struct sk_payment_ops) the plugin was built with */

    int (*attach)(void *instance, uv_loop_t *loop, void **conn, char *errbuf);
    void (*detach)(void *conn);
    int (*ready)(void *conn);

    /* Create the trade (or make the signed payment URL, for gateways whose payment
     * page is a redirect); res carries pay_url or qr_code. Creating the same order
     * again returns the existing trade where the gateway allows it. */
    int (*create)(void *conn, const struct sk_pay_trade *trade, sk_pay_cb cb, void *arg);
    /* Ask the gateway for the trade's status. */
    int (*query)(void *conn, const char *order_no, sk_pay_cb cb, void *arg);
    /* Close an unpaid trade. res->status: SK_TRADE_CLOSED (closed now or before),
     * SK_TRADE_NOT_FOUND (no trade: nothing to close), SK_TRADE_PAID (it was paid:
     * not closed). */
    int (*close)(void *conn, const char *order_no, sk_pay_cb cb, void *arg);
    /* Give back amount_cents of a paid trade; refund_no identifies this refund, so a
     * retry with the same refund_no never refunds twice. */
    int (*refund)(void *conn, const char *order_no, const char *refund_no, int64_t amount_cents,
                  const char *reason, sk_pay_cb cb, void *arg);

    /* Verify and parse a notify body (content_type as received). CPU only, no I/O:
     * callable on any thread. SK_OK with *out filled, or SK_ERR with errbuf
     * (SK_ERRLEN) for a bad signature, another app id, a malformed body. */
    int (*verify_notify)(void *instance, const char *content_type, const char *body, size_t len,
                         struct sk_pay_notify *out, char *errbuf);
    /* The answers the gateway expects to a notify ("success" / "fail" for Alipay)
     * and their content type. Static strings. */
    const char *notify_ok;
    const char *notify_fail;
    const char *notify_content_type;
};

/* ------------------------------------------------------------------------- */
/* The descriptor every plugin exports.                                      */
/* ------------------------------------------------------------------------- */

struct sk_plugin {
    uint16_t abi_major; /* first: they protect the rest */
    uint16_t abi_minor;
    uint32_t magic;
    const char *name;    /* e.g. "redis"; matches the config's `name:` */
    const char *version; /* the plugin's own version, free text */
    enum sk_plugin_kind kind;

    /* Make an instance from the host table (config inside). On failure return SK_ERR
     * with a sentence in errbuf (SK_ERRLEN bytes) and leave *instance untouched.
     * The instance belongs to the plugin until destroy(). */
    int (*create)(const struct sk_host *host, void **instance, char *errbuf);
    /* Free the instance; every connection has been detached before. */
    void (*destroy)(void *instance);

    /* The ops table of `kind` (struct sk_stock_ops for SK_PLUGIN_STOCK, struct
     * sk_queue_ops for SK_PLUGIN_QUEUE, struct sk_payment_ops for SK_PLUGIN_PAYMENT).
     * Static. */
    const void *ops;
};

/* Use as: SK_PLUGIN_DECLARE = { .abi_major = SK_PLUGIN_ABI_MAJOR, ... }; */
#define SK_PLUGIN_DECLARE SK_PLUGIN_EXPORT const struct sk_plugin sk_plugin

#ifdef __cplusplus
}
#endif

#endif /* SECKILL_PLUGIN_H */
