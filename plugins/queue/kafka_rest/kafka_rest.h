/*
 * The `kafka_rest` queue plugin's insides, shared by its files (hidden symbols,
 * none of it is ABI):
 *
 *   kafka_rest.c  the descriptor, create/destroy, attach/detach, publish, the
 *                 deferred-callback queue and the proxy's health (back-off)
 *   conf.c        the config section
 *   http.c        libcurl multi on the loop
 *   proxy.c       one REST call: URL, headers, error bodies, health
 *   records.c     struct sk_reservation <-> the JSON value of a Kafka record
 *   relay.c       reservation logs in Redis -> the topic (first step of consume)
 *   consumer.c    the consumer instance: fetch, deliver, commit, nack, lag
 *
 * Threads: the instance (struct kr) is shared by every loop; what it shares is
 * behind kr->lock. A connection (struct kr_conn) belongs to one loop.
 */
#ifndef SK_KR_KAFKA_REST_H
#define SK_KR_KAFKA_REST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <seckill/plugin.h>
#include <uv.h>

#include "http_loop.h"
#include "redis_conn.h"
#include "reslog.h"

#define KR_VERSION        "1.0.0"
#define KR_ORDER_NO_MAX   127 /* bytes of an order number */
#define KR_NAME_MAX       200 /* topic, group, consumer names */
#define KR_INSTANCE_MAX   100 /* the configured instance name (the Redis consumer name adds a suffix) */
#define KR_URL_MAX        1024
#define KR_MAX_PARTITIONS 100000

enum kr_flavour {
    KR_CONFLUENT = 0, /* commits {"offsets":[…]}, answers 200 */
    KR_REDPANDA = 1,  /* commits {"partitions":[…]}, answers 204 */
};

/* The parsed config section (see docs/kafka.md for every key). */
struct kr_conf {
    char url[512]; /* REST proxy base URL, no trailing "/" */
    char topic[KR_NAME_MAX];
    char group[KR_NAME_MAX];
    char instance[KR_INSTANCE_MAX + 1]; /* this daemon's consumer name (a loop adds "-<n>") */
    unsigned timeout_ms;                /* one HTTP request, connect included */
    unsigned fetch_timeout_ms;          /* longest wait of one records request at the proxy */
    long max_bytes;                     /* max_bytes of a records request */
    enum kr_flavour flavour;
    unsigned retry_initial_ms, retry_max_ms; /* back-off while the proxy is away */
    int relay;                               /* relay the reservation logs (needs redis) */
    unsigned relay_batch;                    /* log entries relayed per consume */
    struct sk_reslog_conf reslog;            /* redis, key_prefix, relay_group, claim_idle_ms
                                                (consumer is set per connection) */
};

/* Parse `text` (the config section as JSON) into conf. SK_ERR with "config key
 * KEY: problem" in errbuf (SK_ERRLEN) and conf unspecified on failure. Resolves the
 * redis host (may block: call from create()). */
int kr_conf_parse(const char *text, struct kr_conf *conf, char *errbuf);

/* Highest offset seen per partition of the topic (produced or fetched), for lag. */
struct kr_mark {
    int32_t partition;
    int64_t high;
};

/* The instance: config, metrics and what the loops share. */
struct kr {
    const struct sk_host *host;
    struct kr_conf conf;
    struct sk_rconn_metrics rm;
    struct sk_metric *produced, *relayed, *delivered, *committed, *bad, *http_errors;
    pthread_mutex_t lock; /* guards next_conn and marks */
    unsigned next_conn;
    struct kr_mark *marks;
    size_t n_marks;
};

/* Note that `offset` of `partition` exists (thread-safe). */
void kr_mark(struct kr *k, int32_t partition, int64_t offset);
/* A copy of the marks (caller frees *out); SK_ERR when out of memory. */
int kr_marks_copy(struct kr *k, struct kr_mark **out, size_t *n);

/* A batch handed out by consume and not yet acked or nacked. */
struct kr_token {
    struct kr_token *prev, *next; /* the connection's tokens, in fetch order */
    uint64_t gen;                 /* consumer incarnation that fetched it */
    size_t n_parts;
    struct kr_mark *parts; /* per partition, the last offset delivered */
    int acked;             /* ack() called: waits for earlier batches */
    size_t records;        /* records and bad records it covers */
    sk_queue_done_cb cb;
    void *arg;
};

enum kr_cstate {
    KR_NONE = 0,  /* no consumer instance (yet, or it was lost) */
    KR_READY = 1, /* created and subscribed: base_uri is valid */
};

/* The consumer instance of one connection. */
struct kr_consumer {
    enum kr_cstate state;
    int reset; /* delete the old instance before creating one */
    char base_uri[KR_URL_MAX];
    uint64_t gen;   /* bumped whenever the instance changes */
    json_t *buffer; /* fetched, not yet delivered (array), or NULL */
    size_t buf_pos;
    struct kr_token *head, *tail;
    int committing;             /* one commit in flight at a time */
    int busy;                   /* a consume is in flight */
    char probe_uri[KR_URL_MAX]; /* the unsubscribed instance lag() reads with */
    int probe_ready;
};

/* One loop's connection. */
struct kr_conn {
    struct kr *k;
    uv_loop_t *loop;
    unsigned no;
    char name[KR_INSTANCE_MAX + 16]; /* consumer instance name: <instance>-<no> */
    int refs;                        /* attach + ops alive + open handles */
    int closing;
    struct sk_chttp *http;
    struct sk_reslog *reslog; /* NULL when relay is off or closed */
    uv_idle_t idle;           /* runs deferred callbacks */
    struct kr_later *later_head, *later_tail;
    /* The proxy's health: verbs fail fast while it is down, a probe retries. */
    int up;
    int probing;
    unsigned backoff_ms;
    uv_timer_t probe_timer;
    char down_why[SK_ERRLEN];
    int64_t relay_retry_at_ms; /* relay paused after a failure until then */
    unsigned relay_backoff_ms;
    char relay_why[SK_ERRLEN]; /* the last relay failure, "" when it works */
    int deletes;               /* DELETEs in flight while detaching */
    struct kr_consumer cons;
};

void kr_conn_ref(struct kr_conn *c);
void kr_conn_unref(struct kr_conn *c);

/* Run fn(p) from the loop, on its next turn (never inside the calling verb). When
 * the connection detaches first, fn still runs then, with c->closing set; once it
 * is closing (no verb can be on the stack then), fn runs at once. SK_ERR (fn never
 * runs) when out of memory. */
int kr_defer(struct kr_conn *c, void (*fn)(void *p), void *p);

/* Milliseconds since the epoch. */
int64_t kr_now_ms(void);

/* ---- proxy.c: one REST call ------------------------------------------------ */

/* An answer: ok (2xx), or why not (err: a sentence naming the call). Valid only
 * during the callback. */
struct kr_answer {
    int ok;
    long status;     /* 0 when no answer came */
    long error_code; /* the proxy's error_code, 0 when none */
    json_t *json;    /* the parsed body or NULL (owned by the call) */
    const char *err; /* when !ok */
};

typedef void (*kr_answer_cb)(void *arg, const struct kr_answer *a);

/* Send one request to the proxy. url: absolute, or a path that is appended to the
 * configured url. body is copied. extra_ms: added to timeout_ms (long polls).
 * Transport failures and 5xx answers mark the proxy down (see kr_proxy_ok), any
 * other answer marks it up. SK_OK: cb runs once, later. SK_ERR (errbuf): never. */
int kr_call(struct kr_conn *c, const char *method, const char *url, const char *content_type, const char *accept,
            const char *body, unsigned extra_ms, kr_answer_cb cb, void *arg, char *errbuf);

/* Is the proxy believed reachable? If not, say why in errbuf and return 0. */
int kr_proxy_ok(struct kr_conn *c, char *errbuf);
/* Probe the proxy now (GET /topics), unless a probe is in flight (attach). */
void kr_proxy_probe(struct kr_conn *c);
/* The proxy failed (sentence why): verbs fail fast until the probe succeeds. */
void kr_proxy_down(struct kr_conn *c, const char *why);

/* Produce `records` (a JSON array of {"key","value"}; stolen) to the topic. The
 * callback gets SK_OK only when every record has an offset and no error. */
typedef void (*kr_produce_cb)(void *arg, int status, const char *err);
int kr_produce(struct kr_conn *c, json_t *records, kr_produce_cb cb, void *arg, char *errbuf);

/* ---- records.c ------------------------------------------------------------- */

/* The Kafka record of a reservation: {"key": order_no, "value": {every field}}.
 * NULL with errbuf on a value JSON cannot carry (ids above 2^63-1, no order_no). */
json_t *kr_record_of(const struct sk_reservation *r, char *errbuf);
/* The Kafka record that carries a bad reservation-log entry on to the consumer. */
json_t *kr_record_of_bad(const struct sk_queue_bad_record *b);

/* Read a fetched record's value. SK_OK: *out filled (its order_no points into
 * value). SK_ERR: why in errbuf; when the value carries a bad log entry, *raw and
 * *source point into value too (else NULL). */
int kr_record_parse(const json_t *value, struct sk_reservation *out, const char **raw, const char **source,
                    char *errbuf);

/* ---- relay.c --------------------------------------------------------------- */

/* Relay one batch of the items' reservation logs to the topic, then call
 * done(arg) (always, once, later; the relay's own failures are logged and retried,
 * never lost). SK_ERR: nothing to do now (relay off, paused, redis not ready or
 * no items) and done never runs. */
int kr_relay(struct kr_conn *c, const uint64_t *items, size_t n_items, void (*done)(void *arg), void *arg);

/* ---- consumer.c ------------------------------------------------------------ */

/* The verbs of struct sk_queue_ops on connection c, with their contracts from
 * <seckill/plugin.h>; consumer.c says how delivery, commits and lag work. A token
 * is a struct kr_token the connection handed out in a batch. */
int kr_consume(struct kr_conn *c, const uint64_t *items, size_t n_items, size_t max, unsigned wait_ms,
               sk_queue_batch_cb cb, void *arg);
int kr_ack(struct kr_conn *c, struct kr_token *t, sk_queue_done_cb cb, void *arg);
void kr_nack(struct kr_conn *c, struct kr_token *t);
int kr_lag(struct kr_conn *c, const uint64_t *items, size_t n_items, sk_queue_lag_cb cb, void *arg);
/* Detach: fail what waits, free the tokens, and start deleting the consumer
 * instances at the proxy (c->deletes counts them; kr_detach_step is called as
 * each one ends). */
void kr_consumer_close(struct kr_conn *c);
/* The end of detach: once no detach-time DELETE is in flight, close the HTTP
 * client (which frees c when its handles are closed). Called by detach and as each
 * DELETE ends. */
void kr_detach_step(struct kr_conn *c);

#endif
