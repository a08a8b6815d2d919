/*
 * The consuming side: one consumer instance of the REST proxy per connection,
 * named "<instance>-<loop number>" in the configured group, subscribed to the
 * topic, with auto commit off and auto.offset.reset earliest (a new group starts
 * from the first record: nothing produced is skipped).
 *
 * Delivery is at least once:
 *   - ack commits, per partition, the offset of the last record of the batch (the
 *     proxy stores it plus one). Batches are committed in the order they were
 *     fetched: an ack waits for the acks of earlier batches, since committing a
 *     later offset would skip the records of an earlier batch not yet written.
 *   - nack does not commit, and throws the consumer instance away (DELETE, then a
 *     new one at the next consume): the proxy's group then delivers every record
 *     not committed again, from the committed offset. Batches fetched by the old
 *     instance and acked later are not committed (their records come again; the
 *     order writer is idempotent).
 *   - an instance the proxy forgot (idle longer than its instance timeout, the
 *     proxy restarted: 40403) is replaced the same way.
 *
 * lag() adds what the relay has not carried yet (reslog lag) to, per partition
 * seen, the highest offset seen + 1 minus the group's committed offset, read
 * through a second, unsubscribed instance "<name>-lag" (so reading it never
 * joins the group nor waits behind a long poll). The v2 API has no end-offset
 * call in our reference, so "highest offset seen" is what this daemon produced or
 * fetched: records produced by other daemons and not yet fetched here are not
 * counted (see docs/kafka.md).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_rest.h"
#include "say.h"

#define CT_V2   "application/vnd.kafka.v2+json"
#define CT_JSON "application/vnd.kafka.json.v2+json"

static int is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* The instance is gone or must go: everything it fetched and did not commit will
 * be delivered again by the proxy, so its buffer and its batches are void. */
static void lose_instance(struct kr_conn *c, int delete_old)
{
    struct kr_consumer *k = &c->cons;
    if (k->state == KR_READY || k->buffer != NULL)
        k->gen++;
    k->state = KR_NONE;
    if (k->buffer != NULL) {
        json_decref(k->buffer);
        k->buffer = NULL;
    }
    k->buf_pos = 0;
    if (delete_old && k->base_uri[0] != '\0')
        k->reset = 1;
    else {
        k->reset = 0;
        k->base_uri[0] = '\0';
    }
}

/* The body of a consumer create call. Caller frees. */
static char *create_body(const char *name)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "format", "json", "auto.offset.reset", "earliest",
                          "auto.commit.enable", "false");
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (o != NULL)
        json_decref(o);
    return s;
}

/* ================================================================================ */
/* consume                                                                          */
/* ================================================================================ */

struct consume {
    struct kr_conn *c;
    uint64_t *items;
    size_t n_items, max;
    unsigned wait_ms;
    sk_queue_batch_cb cb;
    void *arg;
    uint64_t gen;   /* the instance the fetch went to */
    int holds_busy; /* this consume is the one in flight (cons.busy) */
    int retried;    /* the instance was replaced once during this consume */
    int conflicted; /* a 409 on create was answered once */
    char err[SK_ERRLEN];
};

static void step(struct consume *x);
static void create_instance(struct consume *x);

/* Let the next consume start: called before the callback, which may start it. */
static void release_busy(struct consume *x)
{
    if (x->holds_busy)
        x->c->cons.busy = 0;
    x->holds_busy = 0;
}

static void consume_end(struct consume *x)
{
    struct kr_conn *c = x->c;
    release_busy(x);
    free(x->items);
    free(x);
    kr_conn_unref(c);
}

/* Fail the consume with x->err (from the loop). */
static void consume_fail_now(void *p)
{
    struct consume *x = p;
    release_busy(x);
    x->cb(x->arg, SK_ERR, NULL, x->err);
    consume_end(x);
}

static void consume_fail(struct consume *x)
{
    if (x->c->closing)
        say(x->err, "kafka_rest connection closed");
    if (kr_defer(x->c, consume_fail_now, x) != SK_OK)
        consume_fail_now(x); /* out of memory: we are in a callback here, never in the verb */
}

/* One delivered batch's own memory, freed after the callback. */
struct delivery {
    struct sk_reservation *recs;
    struct sk_queue_bad_record *bad;
    char **strings; /* raw and source texts of bad records */
    char (*whys)[SK_ERRLEN];
    size_t n_strings;
};

static void delivery_free(struct delivery *d)
{
    for (size_t i = 0; i < d->n_strings; i++)
        free(d->strings[i]);
    free(d->strings);
    free(d->whys);
    free(d->recs);
    free(d->bad);
}

static int token_add_part(struct kr_token *t, int32_t partition, int64_t offset)
{
    for (size_t i = 0; i < t->n_parts; i++) {
        if (t->parts[i].partition == partition) {
            if (t->parts[i].high < offset)
                t->parts[i].high = offset;
            return SK_OK;
        }
    }
    struct kr_mark *p = realloc(t->parts, (t->n_parts + 1) * sizeof(*p));
    if (p == NULL)
        return SK_ERR;
    t->parts = p;
    t->parts[t->n_parts++] = (struct kr_mark){.partition = partition, .high = offset};
    return SK_OK;
}

static void token_free(struct kr_token *t)
{
    free(t->parts);
    free(t);
}

static void token_unlink(struct kr_consumer *k, struct kr_token *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        k->head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        k->tail = t->prev;
    t->prev = t->next = NULL;
}

static char *dup_or_null(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Read `take` records of the buffer (from buf_pos) into d and batch, and a new
 * token t covering them. SK_ERR when out of memory (d is then freed by the
 * caller; nothing else changed). The strings point into the buffer. */
static int fill(struct kr_conn *c, json_t *buf, size_t take, struct delivery *d, struct sk_queue_batch *batch,
                struct kr_token **out)
{
    struct kr_consumer *k = &c->cons;
    struct kr_token *t = calloc(1, sizeof(*t));
    char where[KR_NAME_MAX + 64 + 256];
    int rc = SK_ERR;

    d->recs = calloc(take, sizeof(*d->recs));
    d->bad = calloc(take, sizeof(*d->bad));
    d->strings = calloc(2 * take, sizeof(*d->strings));
    d->whys = calloc(take, sizeof(*d->whys));
    if (d->recs == NULL || d->bad == NULL || d->strings == NULL || d->whys == NULL || t == NULL)
        goto out;
    t->gen = k->gen;
    t->records = take;
    for (size_t i = 0; i < take; i++) {
        const json_t *rec = json_array_get(buf, k->buf_pos + i);
        const json_t *value = json_object_get(rec, "value");
        int32_t part = (int32_t)json_integer_value(json_object_get(rec, "partition"));
        int64_t off = json_integer_value(json_object_get(rec, "offset"));
        const char *raw = NULL, *source = NULL;
        if (token_add_part(t, part, off) != SK_OK)
            goto out;
        if (kr_record_parse(value, &d->recs[batch->n], &raw, &source, d->whys[batch->n_bad]) == SK_OK) {
            batch->n++;
            continue;
        }
        if (source != NULL)
            snprintf(where, sizeof(where), "%.255s, relayed as %s-%d@%" PRId64, source, c->k->conf.topic, part, off);
        else
            snprintf(where, sizeof(where), "%s-%d@%" PRId64, c->k->conf.topic, part, off);
        char *rawcopy = raw != NULL ? dup_or_null(raw)
                                    : json_dumps(value != NULL ? value : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        char *wherecopy = dup_or_null(where);
        d->strings[d->n_strings++] = rawcopy;
        d->strings[d->n_strings++] = wherecopy;
        if (rawcopy == NULL || wherecopy == NULL)
            goto out;
        d->bad[batch->n_bad] =
            (struct sk_queue_bad_record){.raw = rawcopy, .why = d->whys[batch->n_bad], .source = wherecopy};
        batch->n_bad++;
    }
    batch->records = d->recs;
    batch->bad = d->bad;
    batch->ack_token = t;
    *out = t;
    t = NULL;
    rc = SK_OK;
out:
    if (t != NULL)
        token_free(t);
    return rc;
}

/* Deliver up to max records of the buffer (from the loop). */
static void deliver_now(void *p)
{
    struct consume *x = p;
    struct kr_conn *c = x->c;
    struct kr_consumer *k = &c->cons;
    struct delivery d = {0};
    struct kr_token *t = NULL;
    struct sk_queue_batch batch = {0};
    json_t *buf = NULL;
    size_t take = 0;

    if (!c->closing && k->buffer != NULL) {
        size_t avail = json_array_size(k->buffer) - k->buf_pos;
        take = avail < x->max ? avail : x->max;
    }
    if (c->closing) {
        consume_fail_now(x);
    } else if (take > 0 && fill(c, k->buffer, take, &d, &batch, &t) != SK_OK) {
        say(x->err, "out of memory delivering %zu records", take);
        delivery_free(&d);
        consume_fail_now(x);
    } else {
        if (take > 0) {
            /* The records' strings live in the buffer: keep it through the
             * callback, even if nack() drops it meanwhile. */
            buf = json_incref(k->buffer);
            k->buf_pos += take;
            if (k->buf_pos >= json_array_size(k->buffer)) {
                json_decref(k->buffer);
                k->buffer = NULL;
                k->buf_pos = 0;
            }
            t->prev = k->tail;
            if (k->tail != NULL)
                k->tail->next = t;
            else
                k->head = t;
            k->tail = t;
            c->k->host->metric_add(c->k->delivered, (int64_t)take);
            c->k->host->metric_add(c->k->bad, (int64_t)batch.n_bad);
        }
        release_busy(x);
        x->cb(x->arg, SK_OK, &batch, NULL);
        if (buf != NULL)
            json_decref(buf);
        delivery_free(&d);
        consume_end(x);
    }
}

static void deliver(struct consume *x)
{
    if (kr_defer(x->c, deliver_now, x) != SK_OK) {
        say(x->err, "out of memory");
        consume_fail_now(x);
    }
}

/* A fetched answer must be a list of records, each with its place in the log. */
static int check_records(const json_t *a, const char *topic, char *errbuf)
{
    size_t i;
    const json_t *r;
    if (!json_is_array(a)) {
        say(errbuf, "kafka rest proxy: the records answer is not a JSON list");
        return SK_ERR;
    }
    json_array_foreach(a, i, r)
    {
        const json_t *p = json_object_get(r, "partition"), *o = json_object_get(r, "offset");
        const json_t *tp = json_object_get(r, "topic");
        if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) >= KR_MAX_PARTITIONS ||
            !json_is_integer(o) || json_integer_value(o) < 0 || (tp != NULL && !json_is_string(tp))) {
            say(errbuf, "kafka rest proxy: record %zu of the records answer has no valid partition and offset", i);
            return SK_ERR;
        }
        if (tp != NULL && strcmp(json_string_value(tp), topic) != 0) {
            say(errbuf, "kafka rest proxy: record %zu comes from topic %s, not %s", i, json_string_value(tp), topic);
            return SK_ERR;
        }
    }
    return SK_OK;
}

static void on_fetched(void *arg, const struct kr_answer *a)
{
    struct consume *x = arg;
    struct kr_conn *c = x->c;
    struct kr_consumer *k = &c->cons;
    const json_t *r;
    size_t i;

    if (c->closing) {
        consume_fail(x);
    } else if (!a->ok && (a->error_code == 40403 || a->error_code == 40903) && !x->retried) {
        /* Forgotten by the proxy (idle, restarted) or no longer subscribed. */
        c->k->host->log(c->k->host, SK_LOG_INFO, "consumer instance %s lost (%s): making a new one", c->name, a->err);
        x->retried = 1;
        lose_instance(c, a->error_code == 40903);
        step(x);
    } else if (!a->ok) {
        say(x->err, "%s", a->err);
        consume_fail(x);
    } else if (x->gen != k->gen) {
        /* nack() threw the instance away meanwhile: these records come again. */
        deliver(x);
    } else if (check_records(a->json, c->k->conf.topic, x->err) != SK_OK) {
        lose_instance(c, 1);
        consume_fail(x);
    } else {
        json_array_foreach(a->json, i, r)
        {
            kr_mark(c->k, (int32_t)json_integer_value(json_object_get(r, "partition")),
                    json_integer_value(json_object_get(r, "offset")));
        }
        if (json_array_size(a->json) > 0) {
            k->buffer = json_incref(a->json);
            k->buf_pos = 0;
        }
        deliver(x);
    }
}

static void fetch(struct consume *x)
{
    struct kr_conn *c = x->c;
    const struct kr_conf *conf = &c->k->conf;
    unsigned wait = x->wait_ms < conf->fetch_timeout_ms ? x->wait_ms : conf->fetch_timeout_ms;
    char url[KR_URL_MAX + 96];

    snprintf(url, sizeof(url), "%s/records?timeout=%u&max_bytes=%ld", c->cons.base_uri, wait, conf->max_bytes);
    x->gen = c->cons.gen;
    if (kr_call(c, "GET", url, NULL, CT_JSON, NULL, wait, on_fetched, x, x->err) != SK_OK)
        consume_fail(x);
}

static void on_subscribed(void *arg, const struct kr_answer *a)
{
    struct consume *x = arg;
    struct kr_conn *c = x->c;

    if (c->closing) {
        consume_fail(x);
    } else if (!a->ok && a->error_code == 40403 && !x->retried) {
        x->retried = 1;
        lose_instance(c, 0);
        step(x);
    } else if (!a->ok) {
        say(x->err, "%s", a->err);
        lose_instance(c, 1);
        consume_fail(x);
    } else {
        c->cons.state = KR_READY;
        c->k->host->log(c->k->host, SK_LOG_INFO, "consumer instance %s of group %s subscribed to %s", c->name,
                        c->k->conf.group, c->k->conf.topic);
        fetch(x);
    }
}

static void subscribe(struct consume *x)
{
    struct kr_conn *c = x->c;
    char url[KR_URL_MAX + 32], *body = NULL;
    json_t *o = json_pack("{s:[s]}", "topics", c->k->conf.topic);

    snprintf(url, sizeof(url), "%s/subscription", c->cons.base_uri);
    body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (body == NULL) {
        say(x->err, "out of memory");
        consume_fail(x);
    } else if (kr_call(c, "POST", url, CT_V2, NULL, body, 0, on_subscribed, x, x->err) != SK_OK) {
        consume_fail(x);
    }
    free(body);
    if (o != NULL)
        json_decref(o);
}

static void on_created(void *arg, const struct kr_answer *a)
{
    struct consume *x = arg;
    struct kr_conn *c = x->c;
    const json_t *uri = json_object_get(a->json, "base_uri");

    if (c->closing) {
        consume_fail(x);
    } else if (!a->ok && a->error_code == 40902 && !x->conflicted) {
        /* Our name is taken: an instance of ours that outlived a restart. Throw it
         * away (its uncommitted records come again) and make it anew. */
        x->conflicted = 1;
        snprintf(c->cons.base_uri, sizeof(c->cons.base_uri), "%s/consumers/%s/instances/%s", c->k->conf.url,
                 c->k->conf.group, c->name);
        c->cons.reset = 1;
        step(x);
    } else if (!a->ok) {
        say(x->err, "%s", a->err);
        consume_fail(x);
    } else if (!json_is_string(uri) || !is_http_url(json_string_value(uri)) ||
               json_string_length(uri) >= sizeof(c->cons.base_uri)) {
        say(x->err, "kafka rest proxy: the consumer create answer has no usable base_uri");
        consume_fail(x);
    } else {
        snprintf(c->cons.base_uri, sizeof(c->cons.base_uri), "%s", json_string_value(uri));
        subscribe(x);
    }
}

static void create_instance(struct consume *x)
{
    struct kr_conn *c = x->c;
    char path[KR_NAME_MAX + 32];
    char *body = create_body(c->name);

    snprintf(path, sizeof(path), "/consumers/%s", c->k->conf.group);
    if (body == NULL) {
        say(x->err, "out of memory");
        consume_fail(x);
    } else if (kr_call(c, "POST", path, CT_V2, CT_V2, body, 0, on_created, x, x->err) != SK_OK) {
        consume_fail(x);
    }
    free(body);
}

static void on_old_deleted(void *arg, const struct kr_answer *a)
{
    struct consume *x = arg;
    struct kr_conn *c = x->c;

    if (c->closing) {
        consume_fail(x);
    } else if (a->status == 0 || a->status >= 500) {
        say(x->err, "%s", a->err);
        consume_fail(x); /* reset stays set: the next consume deletes it again */
    } else {
        /* 204, or 404 when the proxy had forgotten it already: either way it is gone. */
        c->cons.reset = 0;
        c->cons.base_uri[0] = '\0';
        create_instance(x);
    }
}

/* Move the consume on: buffer, then instance, then fetch. Never completes inside
 * the call (so it may run inside the verb). */
static void step(struct consume *x)
{
    struct kr_conn *c = x->c;
    struct kr_consumer *k = &c->cons;

    if (c->closing) {
        consume_fail(x);
    } else if (k->buffer != NULL) {
        deliver(x);
    } else if (!kr_proxy_ok(c, x->err)) {
        consume_fail(x); /* the relay found the proxy gone: fail fast */
    } else if (k->state == KR_READY) {
        fetch(x);
    } else if (k->reset && k->base_uri[0] != '\0') {
        if (kr_call(c, "DELETE", k->base_uri, NULL, NULL, NULL, 0, on_old_deleted, x, x->err) != SK_OK)
            consume_fail(x);
    } else {
        create_instance(x);
    }
}

static void after_relay(void *arg)
{
    step(arg);
}

int kr_consume(struct kr_conn *c, const uint64_t *items, size_t n_items, size_t max, unsigned wait_ms,
               sk_queue_batch_cb cb, void *arg)
{
    struct consume *x = NULL;
    int rc = SK_ERR;

    if (c->closing || cb == NULL || (n_items > 0 && items == NULL))
        goto out;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto out;
    if (n_items > 0) {
        x->items = malloc(n_items * sizeof(*x->items));
        if (x->items == NULL)
            goto out;
        memcpy(x->items, items, n_items * sizeof(*items));
    }
    x->c = c;
    x->n_items = n_items;
    x->max = max;
    x->wait_ms = wait_ms;
    x->cb = cb;
    x->arg = arg;
    kr_conn_ref(c);
    if (c->cons.busy) {
        say(x->err, "consume: another consume is in flight on this connection");
        if (kr_defer(c, consume_fail_now, x) != SK_OK)
            goto unref;
    } else if (max == 0) {
        say(x->err, "consume: max must be at least 1");
        if (kr_defer(c, consume_fail_now, x) != SK_OK)
            goto unref;
    } else if (!kr_proxy_ok(c, x->err)) {
        if (kr_defer(c, consume_fail_now, x) != SK_OK)
            goto unref;
    } else {
        c->cons.busy = 1;
        x->holds_busy = 1;
        if (kr_relay(c, x->items, n_items, after_relay, x) != SK_OK)
            step(x);
    }
    x = NULL;
    rc = SK_OK;
    goto out;
unref:
    kr_conn_unref(c);
out:
    if (x != NULL) {
        free(x->items);
        free(x);
    }
    return rc;
}

/* ================================================================================ */
/* ack / nack: commits in fetch order                                               */
/* ================================================================================ */

struct done {
    sk_queue_done_cb cb;
    void *arg;
    int status;
    char err[SK_ERRLEN];
};

static void done_now(void *p)
{
    struct done *d = p;
    d->cb(d->arg, d->status, d->status == SK_OK ? NULL : d->err);
    free(d);
}

/* Complete an acked token's callback from the loop and free the token. */
static void token_complete(struct kr_conn *c, struct kr_token *t, int status, const char *err)
{
    struct done *d = calloc(1, sizeof(*d));
    if (d != NULL) {
        d->cb = t->cb;
        d->arg = t->arg;
        d->status = status;
        snprintf(d->err, sizeof(d->err), "%s", err != NULL ? err : "");
        if (kr_defer(c, done_now, d) != SK_OK) {
            free(d);
            d = NULL;
        }
    }
    if (d == NULL) /* out of memory: still exactly one callback (we are never inside ack here) */
        t->cb(t->arg, status, status == SK_OK ? NULL : (err != NULL ? err : "out of memory"));
    token_free(t);
}

struct commit {
    struct kr_conn *c;
    struct kr_token *tokens; /* chained through next */
    size_t records;
};

static void flush(struct kr_conn *c);

static void on_committed(void *arg, const struct kr_answer *a)
{
    struct commit *m = arg;
    struct kr_conn *c = m->c;
    char err[SK_ERRLEN];

    c->cons.committing = 0;
    if (a->ok) {
        c->k->host->metric_add(c->k->committed, (int64_t)m->records);
    } else if (a->error_code == 40403 && !c->closing) {
        say(err, "%s: the consumer instance was lost, so these records will be delivered again", a->err);
        lose_instance(c, 0);
    } else {
        say(err, "%s", c->closing ? "kafka_rest connection closed" : a->err);
    }
    while (m->tokens != NULL) {
        struct kr_token *t = m->tokens;
        m->tokens = t->next;
        token_complete(c, t, a->ok ? SK_OK : SK_ERR, a->ok ? NULL : err);
    }
    free(m);
    if (!c->closing)
        flush(c);
}

/* Commit every acked batch that no unacked batch of the same instance precedes. */
static void flush(struct kr_conn *c)
{
    struct kr_consumer *k = &c->cons;
    struct kr_token *t = k->head, *next, *ready = NULL, **tail = &ready;
    struct kr_token merged = {0};
    struct commit *m = NULL;
    json_t *list = NULL, *root = NULL;
    char *body = NULL, url[KR_URL_MAX + 16], err[SK_ERRLEN];
    size_t records = 0;
    int blocked = 0;

    for (t = k->committing ? NULL : t; t != NULL; t = next) {
        next = t->next;
        if (t->gen != k->gen) {
            if (t->acked) {
                /* Fetched by an instance that is gone: not committed, delivered again. */
                c->k->host->log(c->k->host, SK_LOG_DEBUG,
                                "batch of %zu records acked after its consumer instance was replaced: its records "
                                "will be delivered again",
                                t->records);
                token_unlink(k, t);
                token_complete(c, t, SK_OK, NULL);
            }
            continue;
        }
        if (!t->acked)
            blocked = 1;
        if (blocked || !t->acked)
            continue;
        token_unlink(k, t);
        *tail = t;
        tail = &t->next;
        records += t->records;
        for (size_t i = 0; i < t->n_parts; i++) {
            if (token_add_part(&merged, t->parts[i].partition, t->parts[i].high) != SK_OK) {
                say(err, "out of memory committing offsets");
                goto fail;
            }
        }
    }
    if (ready == NULL)
        goto out;
    if (merged.n_parts == 0 || k->state != KR_READY) {
        while (ready != NULL) {
            t = ready;
            ready = t->next;
            token_complete(c, t, SK_OK, NULL);
        }
        goto out;
    }
    list = json_array();
    m = calloc(1, sizeof(*m));
    if (list == NULL || m == NULL)
        goto nomem;
    for (size_t i = 0; i < merged.n_parts; i++) {
        json_t *o = json_pack("{s:s, s:i, s:I}", "topic", c->k->conf.topic, "partition", (int)merged.parts[i].partition,
                              "offset", (json_int_t)merged.parts[i].high);
        if (o == NULL || json_array_append_new(list, o) != 0)
            goto nomem;
    }
    root = json_pack("{s:O}", c->k->conf.flavour == KR_REDPANDA ? "partitions" : "offsets", list);
    body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    if (body == NULL)
        goto nomem;
    m->c = c;
    m->tokens = ready;
    m->records = records;
    snprintf(url, sizeof(url), "%s/offsets", k->base_uri);
    if (kr_call(c, "POST", url, CT_V2, CT_V2, body, 0, on_committed, m, err) != SK_OK)
        goto fail;
    k->committing = 1;
    ready = NULL;
    m = NULL;
    goto out;
nomem:
    say(err, "out of memory committing offsets");
fail:
    while (ready != NULL) {
        t = ready;
        ready = t->next;
        token_complete(c, t, SK_ERR, err);
    }
out:
    free(m);
    free(body);
    free(merged.parts);
    if (list != NULL)
        json_decref(list);
    if (root != NULL)
        json_decref(root);
}

static struct kr_token *find_token(struct kr_consumer *k, const void *token)
{
    struct kr_token *t;
    for (t = k->head; t != NULL && t != token; t = t->next)
        ;
    return t;
}

int kr_ack(struct kr_conn *c, struct kr_token *token, sk_queue_done_cb cb, void *arg)
{
    struct kr_token *t;
    struct done *d = NULL;
    int rc = SK_ERR;

    if (c->closing || cb == NULL)
        goto out;
    t = token != NULL ? find_token(&c->cons, token) : NULL;
    if (t == NULL || t->acked) {
        /* Nothing to acknowledge (an empty batch) is done; a token that is not
         * outstanding here is a caller's mistake, told through the callback. */
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            goto out;
        d->cb = cb;
        d->arg = arg;
        d->status = token == NULL ? SK_OK : SK_ERR;
        say(d->err, "ack: this batch is not outstanding on this connection (acked or nacked already?)");
        if (kr_defer(c, done_now, d) != SK_OK)
            goto out;
        d = NULL;
        rc = SK_OK;
        goto out;
    }
    t->acked = 1;
    t->cb = cb;
    t->arg = arg;
    flush(c);
    rc = SK_OK;
out:
    free(d);
    return rc;
}

void kr_nack(struct kr_conn *c, struct kr_token *token)
{
    struct kr_token *t = NULL;

    if (!c->closing && token != NULL)
        t = find_token(&c->cons, token);
    if (t != NULL && !t->acked) {
        token_unlink(&c->cons, t);
        if (t->gen == c->cons.gen) {
            c->k->host->log(c->k->host, SK_LOG_INFO,
                            "batch of %zu records given back: replacing consumer instance %s so that the proxy "
                            "delivers them again",
                            t->records, c->name);
            lose_instance(c, 1);
        }
        token_free(t);
        flush(c); /* batches acked behind it are now of an old instance */
    } else if (!c->closing && token != NULL) {
        c->k->host->log(c->k->host, SK_LOG_WARN, "nack: this batch is not outstanding on this connection: ignored");
    }
}

/* ================================================================================ */
/* lag                                                                              */
/* ================================================================================ */

struct lag {
    struct kr_conn *c;
    uint64_t *items;
    size_t n_items;
    sk_queue_lag_cb cb;
    void *arg;
    int64_t redis_lag;
    struct kr_mark *marks;
    size_t n_marks;
    int retried, conflicted;
    int status;
    int64_t result;
    char err[SK_ERRLEN];
};

static void lag_now(void *p)
{
    struct lag *x = p;
    struct kr_conn *c = x->c;
    x->cb(x->arg, x->status, x->status == SK_OK ? x->result : 0, x->status == SK_OK ? NULL : x->err);
    free(x->items);
    free(x->marks);
    free(x);
    kr_conn_unref(c);
}

static void lag_end(struct lag *x, int status)
{
    x->status = status;
    if (x->c->closing && status != SK_OK)
        say(x->err, "kafka_rest connection closed");
    if (kr_defer(x->c, lag_now, x) != SK_OK)
        lag_now(x);
}

static void lag_probe(struct lag *x);

/* Per partition seen: the highest offset seen + 1 minus the committed offset. */
static int64_t kafka_lag(const struct lag *x, const json_t *offs)
{
    int64_t kafka = 0;
    for (size_t i = 0; i < x->n_marks; i++) {
        int64_t committed = 0;
        size_t j;
        const json_t *o;
        json_array_foreach(offs, j, o)
        {
            const json_t *p = json_object_get(o, "partition"), *v = json_object_get(o, "offset");
            if (json_is_integer(p) && json_integer_value(p) == x->marks[i].partition && json_is_integer(v) &&
                json_integer_value(v) > 0)
                committed = json_integer_value(v);
        }
        if (x->marks[i].high + 1 > committed)
            kafka += x->marks[i].high + 1 - committed;
    }
    return kafka;
}

static void on_offsets(void *arg, const struct kr_answer *a)
{
    struct lag *x = arg;
    struct kr_conn *c = x->c;
    const json_t *offs = json_object_get(a->json, "offsets");

    if (c->closing) {
        lag_end(x, SK_ERR);
    } else if (!a->ok && a->error_code == 40403 && !x->retried) {
        x->retried = 1;
        c->cons.probe_uri[0] = '\0';
        lag_probe(x);
    } else if (!a->ok) {
        say(x->err, "%s", a->err);
        lag_end(x, SK_ERR);
    } else if (!json_is_array(offs)) {
        say(x->err, "kafka rest proxy: the committed offsets answer has no \"offsets\" list");
        lag_end(x, SK_ERR);
    } else {
        x->result = x->redis_lag + kafka_lag(x, offs);
        lag_end(x, SK_OK);
    }
}

static void read_committed(struct lag *x)
{
    struct kr_conn *c = x->c;
    json_t *list = json_array(), *root = NULL;
    char *body = NULL, url[KR_URL_MAX + 16];

    for (size_t i = 0; list != NULL && i < x->n_marks; i++) {
        json_t *o = json_pack("{s:s, s:i}", "topic", c->k->conf.topic, "partition", (int)x->marks[i].partition);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    root = list != NULL ? json_pack("{s:o}", "partitions", list) : NULL;
    body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    snprintf(url, sizeof(url), "%s/offsets", c->cons.probe_uri);
    if (body == NULL) {
        say(x->err, "out of memory");
        lag_end(x, SK_ERR);
    } else if (kr_call(c, "GET", url, CT_V2, CT_V2, body, 0, on_offsets, x, x->err) != SK_OK) {
        lag_end(x, SK_ERR);
    }
    free(body);
    if (root != NULL)
        json_decref(root);
}

static void on_probe_created(void *arg, const struct kr_answer *a)
{
    struct lag *x = arg;
    struct kr_conn *c = x->c;
    const json_t *uri = json_object_get(a->json, "base_uri");

    if (c->closing) {
        lag_end(x, SK_ERR);
    } else if (a->ok && json_is_string(uri) && is_http_url(json_string_value(uri)) &&
               json_string_length(uri) < sizeof(c->cons.probe_uri)) {
        snprintf(c->cons.probe_uri, sizeof(c->cons.probe_uri), "%s", json_string_value(uri));
        read_committed(x);
    } else if (!a->ok && a->error_code == 40902 && !x->conflicted) {
        /* Ours from before (it only reads offsets): use it as it is. */
        x->conflicted = 1;
        snprintf(c->cons.probe_uri, sizeof(c->cons.probe_uri), "%s/consumers/%s/instances/%s-lag", c->k->conf.url,
                 c->k->conf.group, c->name);
        read_committed(x);
    } else {
        say(x->err, "%s", a->ok ? "kafka rest proxy: the consumer create answer has no usable base_uri" : a->err);
        lag_end(x, SK_ERR);
    }
}

static void lag_probe(struct lag *x)
{
    struct kr_conn *c = x->c;
    char path[KR_NAME_MAX + 32], name[KR_NAME_MAX + 32];
    char *body = NULL;

    if (x->n_marks == 0) {
        x->result = x->redis_lag; /* nothing produced or fetched here yet */
        lag_end(x, SK_OK);
    } else if (c->cons.probe_uri[0] != '\0') {
        read_committed(x);
    } else {
        snprintf(name, sizeof(name), "%s-lag", c->name);
        snprintf(path, sizeof(path), "/consumers/%s", c->k->conf.group);
        body = create_body(name);
        if (body == NULL) {
            say(x->err, "out of memory");
            lag_end(x, SK_ERR);
        } else if (kr_call(c, "POST", path, CT_V2, CT_V2, body, 0, on_probe_created, x, x->err) != SK_OK) {
            lag_end(x, SK_ERR);
        }
    }
    free(body);
}

static void on_redis_lag(void *arg, int status, int64_t lag, const char *err)
{
    struct lag *x = arg;
    if (status != SK_OK) {
        say(x->err, "reservation logs: %s", err);
        lag_end(x, SK_ERR);
    } else if (x->c->closing) {
        lag_end(x, SK_ERR);
    } else {
        x->redis_lag = lag;
        lag_probe(x);
    }
}

int kr_lag(struct kr_conn *c, const uint64_t *items, size_t n_items, sk_queue_lag_cb cb, void *arg)
{
    struct lag *x = NULL;
    int rc = SK_ERR;

    if (c->closing || cb == NULL || (n_items > 0 && items == NULL))
        goto out;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto out;
    if (n_items > 0) {
        x->items = malloc(n_items * sizeof(*x->items));
        if (x->items == NULL)
            goto out;
        memcpy(x->items, items, n_items * sizeof(*items));
    }
    x->c = c;
    x->n_items = n_items;
    x->cb = cb;
    x->arg = arg;
    if (kr_marks_copy(c->k, &x->marks, &x->n_marks) != SK_OK)
        goto out;
    kr_conn_ref(c);
    if (!kr_proxy_ok(c, x->err)) {
        lag_end(x, SK_ERR); /* deferred: never inside the verb */
    } else if (c->reslog != NULL && n_items > 0) {
        if (sk_reslog_lag(c->reslog, x->items, n_items, on_redis_lag, x) != SK_OK) {
            say(x->err, "reservation logs: cannot read their lag");
            lag_end(x, SK_ERR);
        }
    } else {
        lag_probe(x);
    }
    x = NULL;
    rc = SK_OK;
out:
    if (x != NULL) {
        free(x->items);
        free(x->marks);
        free(x);
    }
    return rc;
}

/* ================================================================================ */
/* detach                                                                           */
/* ================================================================================ */

static void on_detach_deleted(void *arg, const struct kr_answer *a)
{
    struct kr_conn *c = arg;
    (void)a;
    c->deletes--;
    kr_detach_step(c);
}

void kr_consumer_close(struct kr_conn *c)
{
    struct kr_consumer *k = &c->cons;
    char err[SK_ERRLEN];
    const char *uris[2] = {k->base_uri, k->probe_uri};

    while (k->head != NULL) {
        struct kr_token *t = k->head;
        token_unlink(k, t);
        if (t->acked)
            t->cb(t->arg, SK_ERR, "kafka_rest connection closed");
        token_free(t);
    }
    if (k->buffer != NULL) {
        json_decref(k->buffer);
        k->buffer = NULL;
    }
    /* Give the instances back now, so that their partitions go to the other
     * consumers of the group at once rather than after the instance timeout. */
    for (int i = 0; i < 2; i++) {
        if (uris[i][0] == '\0')
            continue;
        if (kr_call(c, "DELETE", uris[i], NULL, NULL, NULL, 0, on_detach_deleted, c, err) == SK_OK)
            c->deletes++;
    }
    k->state = KR_NONE;
}
