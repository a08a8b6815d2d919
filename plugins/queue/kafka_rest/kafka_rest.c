/*
 * The `kafka_rest` queue plugin: reservations travel from the stock store's
 * reservation logs (Redis streams) to a Kafka topic through a Kafka REST Proxy
 * (Confluent's API v2, or Redpanda's HTTP Proxy), and from the topic to the order
 * writer through a consumer instance of the proxy. See docs/kafka.md.
 *
 * This file: the descriptor, create/destroy, attach/detach/ready, publish, and the
 * queue of callbacks deferred to the next loop turn. The .so exports only
 * `sk_plugin`.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "kafka_rest.h"
#include "say.h"

struct kr_later {
    struct kr_later *next;
    void (*fn)(void *p);
    void *p;
};

int64_t kr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- marks: the highest offset seen per partition ------------------------------ */

void kr_mark(struct kr *k, int32_t partition, int64_t offset)
{
    size_t i;
    if (partition >= 0 && partition < KR_MAX_PARTITIONS && offset >= 0) {
        pthread_mutex_lock(&k->lock);
        for (i = 0; i < k->n_marks && k->marks[i].partition != partition; i++)
            ;
        if (i == k->n_marks) {
            /* Out of memory only makes lag() count less: nothing else reads these. */
            struct kr_mark *m = realloc(k->marks, (k->n_marks + 1) * sizeof(*m));
            if (m != NULL) {
                k->marks = m;
                k->marks[k->n_marks++] = (struct kr_mark){.partition = partition, .high = offset};
            }
        } else if (k->marks[i].high < offset) {
            k->marks[i].high = offset;
        }
        pthread_mutex_unlock(&k->lock);
    }
}

int kr_marks_copy(struct kr *k, struct kr_mark **out, size_t *n)
{
    int rc = SK_OK;
    pthread_mutex_lock(&k->lock);
    *out = NULL;
    *n = 0;
    if (k->n_marks > 0) {
        *out = malloc(k->n_marks * sizeof(**out));
        if (*out == NULL)
            rc = SK_ERR;
        else {
            memcpy(*out, k->marks, k->n_marks * sizeof(**out));
            *n = k->n_marks;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* ---- create / destroy ------------------------------------------------------------ */

static int kr_create(const struct sk_host *host, void **instance, char *errbuf)
{
    struct kr *k = calloc(1, sizeof(*k));
    int rc = SK_ERR, locked = 0;

    if (k == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    if (kr_conf_parse(host->config_json, &k->conf, errbuf) != SK_OK)
        goto out;
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        say(errbuf, "cannot make a mutex");
        goto out;
    }
    locked = 1;
    /* Thread-safe in this libcurl (7.84+), and reference-counted. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        say(errbuf, "curl_global_init failed");
        goto out;
    }
    k->host = host;
    k->produced = host->counter(host, "produced_total", "Records the REST proxy took (publish and relay).");
    k->relayed = host->counter(host, "relayed_total", "Reservation-log entries relayed from Redis to Kafka.");
    k->delivered = host->counter(host, "delivered_total", "Records delivered by consume (bad ones included).");
    k->committed = host->counter(host, "committed_total", "Records whose offsets were committed.");
    k->bad = host->counter(host, "bad_records_total", "Records that were not reservations.");
    k->http_errors = host->counter(host, "http_errors_total", "REST calls that failed (no answer or not 2xx).");
    k->rm.commands = host->counter(host, "redis_commands_total", "Commands written to Redis by the relay.");
    k->rm.errors = host->counter(host, "redis_errors_total", "Relay commands that failed.");
    k->rm.reconnects = host->counter(host, "redis_reconnects_total", "Relay connection attempts after the first.");
    host->log(host, SK_LOG_INFO, "kafka rest proxy %s, topic %s, group %s, instance %s%s", k->conf.url, k->conf.topic,
              k->conf.group, k->conf.instance, k->conf.relay ? ", relaying the reservation logs" : ", relay off");
    *instance = k;
    k = NULL;
    rc = SK_OK;
out:
    if (k != NULL) {
        if (locked)
            pthread_mutex_destroy(&k->lock);
        free(k);
    }
    return rc;
}

static void kr_destroy(void *instance)
{
    struct kr *k = instance;
    pthread_mutex_destroy(&k->lock);
    free(k->marks);
    free(k);
    curl_global_cleanup();
}

/* ---- the connection: references, deferred callbacks ------------------------------- */

void kr_conn_ref(struct kr_conn *c)
{
    c->refs++;
}

void kr_conn_unref(struct kr_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

static void run_later(struct kr_conn *c)
{
    struct kr_later *l = c->later_head;
    c->later_head = c->later_tail = NULL;
    while (l != NULL) {
        struct kr_later *next = l->next;
        l->fn(l->p);
        free(l);
        kr_conn_unref(c);
        l = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    struct kr_conn *c = h->data;
    kr_conn_ref(c);
    run_later(c);
    if (c->later_head == NULL)
        uv_idle_stop(&c->idle);
    kr_conn_unref(c);
}

int kr_defer(struct kr_conn *c, void (*fn)(void *p), void *p)
{
    struct kr_later *l;
    if (c->closing) {
        /* Detached: the loop turn may never come for this connection, and no verb
         * is on the stack (verbs refuse to start while closing). */
        fn(p);
        return SK_OK;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return SK_ERR;
    l->fn = fn;
    l->p = p;
    if (c->later_tail != NULL)
        c->later_tail->next = l;
    else
        c->later_head = l;
    c->later_tail = l;
    kr_conn_ref(c);
    uv_idle_start(&c->idle, on_idle);
    return SK_OK;
}

static void on_handle_closed(uv_handle_t *h)
{
    kr_conn_unref(h->data);
}

static void on_http_closed(void *arg)
{
    kr_conn_unref(arg);
}

/* ---- attach / detach / ready ----------------------------------------------------- */

static int kr_attach(void *instance, uv_loop_t *loop, void **conn, char *errbuf)
{
    struct kr *k = instance;
    struct kr_conn *c = calloc(1, sizeof(*c));
    int rc = SK_ERR, idle = 0, timer = 0;

    if (c == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    c->k = k;
    c->loop = loop;
    c->refs = 1;
    pthread_mutex_lock(&k->lock);
    c->no = k->next_conn++;
    pthread_mutex_unlock(&k->lock);
    snprintf(c->name, sizeof(c->name), "%s-%u", k->conf.instance, c->no);
    if (uv_idle_init(loop, &c->idle) != 0) {
        say(errbuf, "cannot make handles on the loop");
        goto out;
    }
    idle = 1;
    if (uv_timer_init(loop, &c->probe_timer) != 0) {
        say(errbuf, "cannot make handles on the loop");
        goto out;
    }
    timer = 1;
    c->idle.data = c;
    c->probe_timer.data = c;
    if (sk_chttp_open(loop, &c->http, errbuf) != SK_OK)
        goto out;
    if (k->conf.relay) {
        struct sk_reslog_conf rconf = k->conf.reslog;
        snprintf(rconf.consumer, sizeof(rconf.consumer), "%s", c->name);
        if (sk_reslog_open(loop, &rconf, k->host, &k->rm, &c->reslog, errbuf) != SK_OK) {
            sk_chttp_close(c->http, NULL, NULL);
            c->http = NULL;
            goto out;
        }
    }
    c->refs += 3; /* idle, probe timer, http */
    kr_proxy_probe(c);
    *conn = c;
    c = NULL;
    rc = SK_OK;
out:
    if (c != NULL) {
        /* Handles close from the loop: free c once they have. */
        c->refs = 1 + idle + timer;
        if (idle)
            uv_close((uv_handle_t *)&c->idle, on_handle_closed);
        if (timer)
            uv_close((uv_handle_t *)&c->probe_timer, on_handle_closed);
        kr_conn_unref(c);
    }
    return rc;
}

/* The last step of detach: once the DELETEs of the consumer instances ended. */
void kr_detach_step(struct kr_conn *c)
{
    if (c->deletes == 0 && c->http != NULL) {
        struct sk_chttp *h = c->http;
        c->http = NULL;
        sk_chttp_close(h, on_http_closed, c);
    }
}

static void kr_detach(void *conn)
{
    struct kr_conn *c = conn;

    if (!c->closing) {
        c->closing = 1;
        kr_conn_ref(c);
        /* Every request in flight fails now; their verbs' callbacks run with SK_ERR. */
        sk_chttp_abort_all(c->http);
        run_later(c);
        kr_consumer_close(c); /* fails waiting acks, frees tokens, starts the DELETEs */
        if (c->reslog != NULL) {
            struct sk_reslog *r = c->reslog;
            c->reslog = NULL;
            sk_reslog_close(r);
        }
        run_later(c);
        uv_idle_stop(&c->idle);
        uv_timer_stop(&c->probe_timer);
        uv_close((uv_handle_t *)&c->idle, on_handle_closed);
        uv_close((uv_handle_t *)&c->probe_timer, on_handle_closed);
        kr_detach_step(c);
        c->refs--;        /* ours; attach's below keeps c alive until here */
        kr_conn_unref(c); /* attach's */
    }
}

static int kr_ready(void *conn)
{
    struct kr_conn *c = conn;
    if (c->closing || !c->up)
        return 0;
    return c->reslog == NULL || sk_reslog_ready(c->reslog);
}

/* ---- publish ---------------------------------------------------------------------- */

struct publish {
    struct kr_conn *c;
    sk_queue_done_cb cb;
    void *arg;
    char err[SK_ERRLEN];
};

static void publish_fail(void *p)
{
    struct publish *x = p;
    x->cb(x->arg, SK_ERR, x->err);
    free(x);
}

static void on_published(void *arg, int status, const char *err)
{
    struct publish *x = arg;
    x->cb(x->arg, status, err);
    free(x);
}

static int kr_publish(void *conn, const struct sk_reservation *records, size_t n, sk_queue_done_cb cb, void *arg)
{
    struct kr_conn *c = conn;
    struct publish *x = calloc(1, sizeof(*x));
    json_t *recs = NULL;
    int rc = SK_ERR;

    if (x == NULL || c->closing)
        goto out;
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    if (records == NULL || n == 0) {
        say(x->err, "publish: no records");
        goto fail_later;
    }
    if (!kr_proxy_ok(c, x->err))
        goto fail_later;
    recs = json_array();
    if (recs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *r = kr_record_of(&records[i], x->err);
        if (r == NULL)
            goto fail_later; /* nothing produced: all or none leave here */
        if (json_array_append_new(recs, r) != 0)
            goto out;
    }
    json_t *give = recs;
    recs = NULL;
    if (kr_produce(c, give, on_published, x, x->err) != SK_OK)
        goto fail_later;
    x = NULL;
    rc = SK_OK;
    goto out;
fail_later:
    if (kr_defer(c, publish_fail, x) == SK_OK) {
        x = NULL;
        rc = SK_OK;
    }
out:
    if (recs != NULL)
        json_decref(recs);
    free(x);
    return rc;
}

/* ---- the verbs of consumer.c ------------------------------------------------------- */

static int kr_consume_v(void *conn, const uint64_t *items, size_t n_items, size_t max, unsigned wait_ms,
                        sk_queue_batch_cb cb, void *arg)
{
    return kr_consume(conn, items, n_items, max, wait_ms, cb, arg);
}

static int kr_ack_v(void *conn, void *token, sk_queue_done_cb cb, void *arg)
{
    return kr_ack(conn, token, cb, arg);
}

static void kr_nack_v(void *conn, void *token)
{
    kr_nack(conn, token);
}

static int kr_lag_v(void *conn, const uint64_t *items, size_t n_items, sk_queue_lag_cb cb, void *arg)
{
    return kr_lag(conn, items, n_items, cb, arg);
}

static const struct sk_queue_ops kr_ops = {
    .size = sizeof(struct sk_queue_ops),
    .attach = kr_attach,
    .detach = kr_detach,
    .ready = kr_ready,
    .publish = kr_publish,
    .consume = kr_consume_v,
    .ack = kr_ack_v,
    .nack = kr_nack_v,
    .lag = kr_lag_v,
};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "kafka_rest",
    .version = KR_VERSION,
    .kind = SK_PLUGIN_QUEUE,
    .create = kr_create,
    .destroy = kr_destroy,
    .ops = &kr_ops,
};
