/*
 * The relay: reservations reach Redis first (the stock plugin appends each one to
 * its item's reservation log in the same script that takes the unit), and the
 * relay carries them on to the Kafka topic. One step per consume:
 *
 *   read a batch of the items' logs with the relay's consumer group (plugins/
 *   common/reslog.h), produce it to the topic, and acknowledge it in Redis only
 *   once the proxy gave every record an offset.
 *
 * A failure anywhere leaves the entries pending in Redis (nack), to be read again
 * — by this daemon or, after claim_idle_ms, by another one — so nothing is lost;
 * a batch produced whose ack did not reach Redis is produced again, and Kafka then
 * holds duplicates, which the order writer absorbs (it is idempotent). Log entries
 * that are not reservations are produced as "bad record" carriers
 * (records.c) so that they reach the host's parking instead of vanishing here.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_rest.h"

struct relay {
    struct kr_conn *c;
    void (*done)(void *arg);
    void *arg;
    void *token; /* the reslog batch being relayed */
    size_t n;
};

static void finish(struct relay *x)
{
    struct kr_conn *c = x->c;
    x->done(x->arg);
    free(x);
    kr_conn_unref(c);
}

/* A relay failure: log it (once per distinct reason) and pause the relay for a
 * back-off, so that an unreachable store is not hammered at every consume. */
static void relay_failed(struct kr_conn *c, const char *why)
{
    const struct kr_conf *conf = &c->k->conf;
    if (!c->closing) {
        c->relay_backoff_ms = c->relay_backoff_ms == 0                       ? conf->retry_initial_ms
                              : c->relay_backoff_ms * 2 > conf->retry_max_ms ? conf->retry_max_ms
                                                                             : c->relay_backoff_ms * 2;
        c->relay_retry_at_ms = kr_now_ms() + c->relay_backoff_ms;
        c->k->host->log(c->k->host, strcmp(c->relay_why, why) != 0 ? SK_LOG_WARN : SK_LOG_DEBUG,
                        "relay from the reservation logs paused for %u ms, nothing lost: %s", c->relay_backoff_ms, why);
        snprintf(c->relay_why, sizeof(c->relay_why), "%s", why);
    }
}

static void relay_worked(struct kr_conn *c)
{
    if (c->relay_why[0] != '\0')
        c->k->host->log(c->k->host, SK_LOG_INFO, "relay from the reservation logs works again");
    c->relay_why[0] = '\0';
    c->relay_backoff_ms = 0;
    c->relay_retry_at_ms = 0;
}

static void on_acked(void *arg, int status, const char *err)
{
    struct relay *x = arg;
    if (status != SK_OK) {
        char why[SK_ERRLEN];
        snprintf(why, sizeof(why), "acknowledging %zu relayed entries in redis: %s (they will be relayed again)", x->n,
                 err);
        relay_failed(x->c, why);
    } else {
        relay_worked(x->c);
    }
    finish(x);
}

static void on_produced(void *arg, int status, const char *err)
{
    struct relay *x = arg;
    struct kr_conn *c = x->c;

    if (c->reslog == NULL) {
        /* Detached: the reader was closed, and it nacked the batch itself. */
        finish(x);
    } else if (status != SK_OK) {
        sk_reslog_nack(c->reslog, x->token);
        relay_failed(c, err);
        finish(x);
    } else {
        c->k->host->metric_add(c->k->relayed, (int64_t)x->n);
        if (c->closing || sk_reslog_ack(c->reslog, x->token, on_acked, x) != SK_OK) {
            /* Closing, or the ack could not start: the entries stay pending and
             * are relayed again (duplicates in Kafka, never a gap). */
            sk_reslog_nack(c->reslog, x->token);
            finish(x);
        }
    }
}

/* Produce the batch's entries to the topic; SK_ERR (why in errbuf) when that
 * could not start. */
static int produce_batch(struct relay *x, const struct sk_queue_batch *b, char *errbuf)
{
    json_t *recs = json_array();
    int rc = SK_ERR;

    snprintf(errbuf, SK_ERRLEN, "out of memory");
    for (size_t i = 0; recs != NULL && i < b->n + b->n_bad; i++) {
        json_t *r;
        if (i < b->n) {
            char why[SK_ERRLEN];
            r = kr_record_of(&b->records[i], why);
            if (r == NULL) {
                /* A reservation Kafka's JSON cannot carry: on to the parking. */
                struct sk_queue_bad_record bad = {.raw = b->records[i].order_no ? b->records[i].order_no : "",
                                                  .why = why,
                                                  .source = "reservation log"};
                r = kr_record_of_bad(&bad);
            }
        } else {
            r = kr_record_of_bad(&b->bad[i - b->n]);
        }
        if (r == NULL || json_array_append_new(recs, r) != 0)
            goto out;
    }
    if (recs != NULL) {
        json_t *give = recs;
        recs = NULL;
        rc = kr_produce(x->c, give, on_produced, x, errbuf);
    }
out:
    if (recs != NULL)
        json_decref(recs);
    return rc;
}

static void on_read(void *arg, int status, const struct sk_queue_batch *b, const char *err)
{
    struct relay *x = arg;
    struct kr_conn *c = x->c;
    char why[SK_ERRLEN];

    if (status != SK_OK) {
        snprintf(why, sizeof(why), "reading the reservation logs: %s", err);
        relay_failed(c, why);
        finish(x);
    } else if (b->ack_token == NULL) {
        finish(x); /* nothing new */
    } else {
        x->token = b->ack_token;
        x->n = b->n + b->n_bad;
        if (c->closing || c->reslog == NULL) {
            /* Detaching: give it back (a closed reader nacked it already). */
            if (c->reslog != NULL)
                sk_reslog_nack(c->reslog, x->token);
            finish(x);
        } else if (produce_batch(x, b, why) != SK_OK) {
            sk_reslog_nack(c->reslog, x->token);
            relay_failed(c, why);
            finish(x);
        }
    }
}

int kr_relay(struct kr_conn *c, const uint64_t *items, size_t n_items, void (*done)(void *arg), void *arg)
{
    struct relay *x = NULL;
    int rc = SK_ERR;

    if (c->reslog == NULL || c->closing || n_items == 0 || !sk_reslog_ready(c->reslog))
        goto out;
    if (c->relay_retry_at_ms != 0 && kr_now_ms() < c->relay_retry_at_ms)
        goto out;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto out;
    x->c = c;
    x->done = done;
    x->arg = arg;
    /* No wait in Redis: the wait of a consume belongs to the fetch from Kafka. */
    if (sk_reslog_read(c->reslog, items, n_items, c->k->conf.relay_batch, 0, on_read, x) != SK_OK)
        goto out;
    kr_conn_ref(c);
    x = NULL;
    rc = SK_OK;
out:
    free(x);
    return rc;
}
