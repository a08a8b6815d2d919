/*
 * The reservation-log reader; see reslog.h for what it guarantees.
 *
 * How a read runs, in stages, each one round trip of pipelined commands:
 *   1. groups: XGROUP CREATE <log> <group> 0 MKSTREAM for the items this reader has
 *      not seen with a group yet (BUSYGROUP: another reader made it first, fine);
 *   2. claim (only when due, every claim_idle_ms / 2, and only when nothing is left
 *      over from the last read): XAUTOCLAIM of entries idle for claim_idle_ms in
 *      the group's pending list, from a cursor kept per item;
 *   3. read: XREADGROUP … COUNT <what is missing> [BLOCK wait] STREAMS <logs> > …,
 *      blocking only when the earlier stages found nothing.
 * A log that lost its group meanwhile (the key was deleted: NOGROUP) sends the read
 * back to stage 1 once.
 *
 * Redis' COUNT is per stream, so one read may bring more than `max` entries: the
 * rest stays in r->carry (pending in Redis under this consumer) and is delivered
 * first by the next read; while it is not empty, no claim runs, so that an entry
 * is never held twice here. An entry that the caller does not follow any more is
 * dropped from the carry and claimed again later by whoever follows its item.
 *
 * Lifetimes: the reader is freed when it is closed and no operation is left
 * (r->live), since sk_rconn_close may run an operation's last callback after
 * sk_reslog_close returns (when it is called from inside a callback). Every
 * operation looks at r->closing before it touches the connection again.
 */
#include "reslog.h"
#include "say.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX          48 /* a stream id: two 20-digit numbers, a dash, NUL */
#define KEY_MAX         128
#define ORDER_NO_MAX    127  /* as the stock plugin allows */
#define RAW_MAX         1024 /* a bad record's raw text is cut there */
#define WHY_MAX         192
#define SOURCE_MAX      (KEY_MAX + ID_MAX + 2)
#define CLAIM_COUNT_MAX 10000 /* entries one XAUTOCLAIM may take */

/* An item whose log this reader has followed. r->items is sorted by id. */
struct rl_item {
    uint64_t id;
    int group_ok;        /* its group exists, as far as this reader knows */
    char cursor[ID_MAX]; /* where its next XAUTOCLAIM starts */
};

/* One entry read from a log, parsed. */
struct rl_entry {
    uint64_t item;
    char id[ID_MAX];
    int bad;
    struct sk_reservation rec; /* good; rec.order_no is set when delivered */
    char order_no[ORDER_NO_MAX + 1];
    char *raw; /* bad: the fields as text (malloc) */
    char why[WHY_MAX];
};

struct rl_vec {
    struct rl_entry *v;
    size_t n, cap;
};

/* What an ack token holds: which entry of which log. */
struct rl_pair {
    uint64_t item;
    char id[ID_MAX];
};

struct rl_token {
    struct rl_token *prev, *next; /* the reader's live tokens */
    size_t n;
    struct rl_pair pairs[];
};

struct sk_reslog {
    uv_loop_t *loop;
    struct sk_reslog_conf conf;
    const struct sk_host *host;
    struct sk_reslog_metrics m;
    struct sk_rconn *rc; /* NULL once closing */
    struct rl_item *items;
    size_t n_items, cap_items;
    struct rl_vec carry;
    struct rl_token *tokens;
    uint64_t claim_due_ms; /* uv_now() from which the next read claims */
    int closing;
    size_t live; /* operations not finished yet */
};

/* The first failure of an operation wins; later ones are dropped. */
static void first_err(char *err, const char *fmt, ...) SK_PRINTF(2, 3);

static void first_err(char *err, const char *fmt, ...)
{
    va_list ap;
    if (err[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(err, SK_ERRLEN, fmt, ap);
    va_end(ap);
}

static void count(const struct sk_reslog *r, struct sk_metric *m, size_t n)
{
    if (m != NULL && n > 0)
        r->host->metric_add(m, (int64_t)n);
}

static void log_key(const struct sk_reslog *r, uint64_t item, char *out)
{
    snprintf(out, KEY_MAX, "%s:{item:%" PRIu64 "}:log", r->conf.key_prefix, item);
}

/* The item of a log key "<prefix>:{item:<id>}:log"; SK_ERR for any other key. */
static int key_item(const struct sk_reslog *r, const char *key, size_t len, uint64_t *item)
{
    size_t plen = strlen(r->conf.key_prefix);
    const char *p, *end = key + len;
    uint64_t v = 0;

    if (len < plen + 7 + 1 + 5 || memcmp(key, r->conf.key_prefix, plen) != 0 || memcmp(key + plen, ":{item:", 7) != 0)
        return SK_ERR;
    p = key + plen + 7;
    if (*p < '0' || *p > '9')
        return SK_ERR;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return SK_ERR;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (end - p != 5 || memcmp(p, "}:log", 5) != 0)
        return SK_ERR;
    *item = v;
    return SK_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static struct rl_item *item_find(struct sk_reslog *r, uint64_t id)
{
    return bsearch(&id, r->items, r->n_items, sizeof(*r->items), cmp_u64);
}

/* Make sure r->items knows `id`; SK_ERR when out of memory. */
static int item_add(struct sk_reslog *r, uint64_t id)
{
    size_t lo = 0, hi = r->n_items;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->items[mid].id == id)
            return SK_OK;
        if (r->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? r->cap_items * 2 : 16;
        struct rl_item *bigger = realloc(r->items, cap * sizeof(*bigger));
        if (bigger == NULL)
            return SK_ERR;
        r->items = bigger;
        r->cap_items = cap;
    }
    memmove(&r->items[lo + 1], &r->items[lo], (r->n_items - lo) * sizeof(*r->items));
    r->items[lo] = (struct rl_item){.id = id};
    snprintf(r->items[lo].cursor, ID_MAX, "0-0");
    r->n_items++;
    return SK_OK;
}

/* A sorted copy of items without duplicates, in *out (caller frees); SK_ERR on
 * out of memory. */
static int items_copy(const uint64_t *items, size_t n, uint64_t **out, size_t *n_out)
{
    uint64_t *v = malloc((n ? n : 1) * sizeof(*v));
    size_t k = 0;

    if (v == NULL)
        return SK_ERR;
    if (n > 0)
        memcpy(v, items, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    }
    *out = v;
    *n_out = k;
    return SK_OK;
}

static int has_item(const uint64_t *sorted, size_t n, uint64_t id)
{
    return bsearch(&id, sorted, n, sizeof(*sorted), cmp_u64) != NULL;
}

/* ---- entries ------------------------------------------------------------ */

static struct rl_entry *vec_push(struct rl_vec *vec)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 32;
        struct rl_entry *bigger = realloc(vec->v, cap * sizeof(*bigger));
        if (bigger == NULL)
            return NULL;
        vec->v = bigger;
        vec->cap = cap;
    }
    memset(&vec->v[vec->n], 0, sizeof(vec->v[0]));
    return &vec->v[vec->n++];
}

/* Move entries [from, src->n) to the end of dst; what does not fit (out of
 * memory) is dropped, and stays pending in Redis to be claimed again. */
static void vec_move(struct rl_vec *dst, struct rl_vec *src, size_t from)
{
    for (size_t i = from; i < src->n; i++) {
        struct rl_entry *e = vec_push(dst);
        if (e != NULL)
            *e = src->v[i];
        else
            free(src->v[i].raw);
    }
    src->n = from < src->n ? from : src->n;
}

static void vec_free(struct rl_vec *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        free(vec->v[i].raw);
    free(vec->v);
    memset(vec, 0, sizeof(*vec));
}

/* The fields as "name=value name=value", control bytes escaped, cut at RAW_MAX. */
static char *raw_text(const redisReply *fields)
{
    char *out = malloc(RAW_MAX + 4);
    size_t n = 0;
    int cut = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; fields != NULL && i < fields->elements && !cut; i++) {
        const redisReply *f = fields->element[i];
        const char *s = f->type == REDIS_REPLY_STRING || f->type == REDIS_REPLY_STATUS ? f->str : "?";
        size_t len = f->type == REDIS_REPLY_STRING || f->type == REDIS_REPLY_STATUS ? f->len : 1;
        const char *sep = i == 0 ? "" : i % 2 ? "=" : " ";
        if (n + strlen(sep) > RAW_MAX) {
            cut = 1;
            break;
        }
        memcpy(out + n, sep, strlen(sep));
        n += strlen(sep);
        for (size_t k = 0; k < len; k++) {
            unsigned char ch = (unsigned char)s[k];
            if (n + 4 > RAW_MAX) {
                cut = 1;
                break;
            }
            if (ch < 0x20 || ch == 0x7f || ch == '\\')
                n += (size_t)snprintf(out + n, 5, "\\x%02x", ch);
            else
                out[n++] = (char)ch;
        }
    }
    if (cut) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static const char *const field_names[8] = {"order_no", "user_id",     "activity_id",    "item_id",
                                           "seq",      "price_cents", "reserved_at_ms", "expires_at_ms"};

/* A decimal without sign, leading garbage or overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return SK_ERR;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return SK_ERR;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return SK_OK;
}

/* Read the fields of one log entry into e (the reservation, or why it is bad). */
static void parse_fields(uint64_t item, const redisReply *fields, struct rl_entry *e)
{
    const redisReply *val[8] = {NULL};
    uint64_t num[8] = {0};

    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) {
        snprintf(e->why, WHY_MAX, "the entry was deleted from the log before it was delivered");
        goto bad;
    }
    if (fields->elements % 2 != 0) {
        snprintf(e->why, WHY_MAX, "the entry has an odd number of field names and values");
        goto bad;
    }
    for (size_t i = 0; i < fields->elements; i += 2) {
        const redisReply *name = fields->element[i], *v = fields->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            snprintf(e->why, WHY_MAX, "the entry holds something other than strings");
            goto bad;
        }
        for (size_t f = 0; f < 8; f++) {
            if (name->len == strlen(field_names[f]) && memcmp(name->str, field_names[f], name->len) == 0) {
                if (val[f] != NULL) {
                    snprintf(e->why, WHY_MAX, "field %s appears twice", field_names[f]);
                    goto bad;
                }
                val[f] = v;
            }
        }
        /* Other fields are left alone: a newer stock plugin may add some. */
    }
    for (size_t f = 0; f < 8; f++) {
        if (val[f] == NULL) {
            snprintf(e->why, WHY_MAX, "field %s is missing", field_names[f]);
            goto bad;
        }
    }
    for (size_t f = 1; f < 8; f++) {
        if (parse_u64(val[f]->str, val[f]->len, &num[f]) != SK_OK || (f >= 5 && num[f] > (uint64_t)INT64_MAX)) {
            /* The value itself is in the raw text, escaped. */
            snprintf(e->why, WHY_MAX, "field %s is not a number from 0 to %s", field_names[f],
                     f >= 5 ? "2^63-1" : "2^64-1");
            goto bad;
        }
    }
    if (val[0]->len < 1 || val[0]->len > ORDER_NO_MAX || strlen(val[0]->str) != val[0]->len) {
        snprintf(e->why, WHY_MAX, "field order_no must be 1 to %d bytes without NUL", ORDER_NO_MAX);
        goto bad;
    }
    if (num[3] != item) {
        snprintf(e->why, WHY_MAX, "field item_id is %" PRIu64 " in the log of item %" PRIu64, num[3], item);
        goto bad;
    }
    if (num[4] < 1 || num[4] > UINT32_MAX) {
        snprintf(e->why, WHY_MAX, "field seq must be from 1 to %" PRIu32 ", not %" PRIu64, UINT32_MAX, num[4]);
        goto bad;
    }
    memcpy(e->order_no, val[0]->str, val[0]->len + 1);
    e->rec = (struct sk_reservation){.user_id = num[1],
                                     .activity_id = num[2],
                                     .item_id = num[3],
                                     .seq = (uint32_t)num[4],
                                     .price_cents = (int64_t)num[5],
                                     .reserved_at_ms = (int64_t)num[6],
                                     .expires_at_ms = (int64_t)num[7]};
    return;
bad:
    e->bad = 1;
    e->raw = raw_text(fields != NULL && fields->type == REDIS_REPLY_ARRAY ? fields : NULL);
}

/* Append the entries of one log (an array of [id, fields]) to vec. SK_ERR when
 * the reply is not shaped as Redis answers or memory ran out (err says which). */
static int take_entries(uint64_t item, const redisReply *entries, struct rl_vec *vec, size_t *taken, char *err)
{
    if (entries->type != REDIS_REPLY_ARRAY) {
        first_err(err, "redis gave an unexpected answer (entries of a log are not a list)");
        return SK_ERR;
    }
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        struct rl_entry *out;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= ID_MAX) {
            first_err(err, "redis gave an unexpected answer (a log entry is not [id, fields])");
            return SK_ERR;
        }
        out = vec_push(vec);
        if (out == NULL) {
            first_err(err, "out of memory");
            return SK_ERR;
        }
        out->item = item;
        memcpy(out->id, e->element[0]->str, e->element[0]->len + 1);
        parse_fields(item, e->element[1]->type == REDIS_REPLY_NIL ? NULL : e->element[1], out);
        if (out->bad && out->raw == NULL) {
            vec->n--;
            first_err(err, "out of memory");
            return SK_ERR;
        }
        (*taken)++;
    }
    return SK_OK;
}

/* ---- the reader ----------------------------------------------------------- */

int sk_reslog_open(uv_loop_t *loop, const struct sk_reslog_conf *conf, const struct sk_host *host,
                   const struct sk_rconn_metrics *m, struct sk_reslog **out, char *errbuf)
{
    struct sk_reslog *r = NULL;
    int rc = SK_ERR;

    if (loop == NULL || conf == NULL || host == NULL || out == NULL) {
        say(errbuf, "reservation log: missing argument");
        goto out;
    }
    if (conf->key_prefix[0] == '\0' || conf->group[0] == '\0' || conf->consumer[0] == '\0' ||
        conf->claim_idle_ms == 0) {
        say(errbuf, "reservation log: key prefix, group, consumer and claim_idle_ms must be set");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    r->loop = loop;
    r->conf = *conf;
    r->host = host;
    r->claim_due_ms = 0;
    if (sk_rconn_open(loop, &r->conf.redis, NULL, 0, host, m, &r->rc, errbuf) != SK_OK)
        goto out;
    *out = r;
    r = NULL;
    rc = SK_OK;
out:
    free(r);
    return rc;
}

void sk_reslog_set_metrics(struct sk_reslog *r, const struct sk_reslog_metrics *m)
{
    if (r != NULL && m != NULL)
        r->m = *m;
}

int sk_reslog_ready(const struct sk_reslog *r)
{
    return r != NULL && !r->closing && sk_rconn_ready(r->rc);
}

static void rl_free(struct sk_reslog *r)
{
    free(r->items);
    free(r);
}

/* An operation has finished: the last one of a closed reader frees it. */
static void rl_release(struct sk_reslog *r)
{
    if (--r->live == 0 && r->closing)
        rl_free(r);
}

static void token_unlink(struct sk_reslog *r, struct rl_token *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        r->tokens = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

void sk_reslog_close(struct sk_reslog *r)
{
    struct sk_rconn *rc;

    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    while (r->tokens != NULL) {
        struct rl_token *t = r->tokens;
        token_unlink(r, t);
        free(t);
    }
    vec_free(&r->carry);
    rc = r->rc;
    r->rc = NULL;
    /* Held while the connection fails what is pending: those callbacks finish
     * operations, and the last one must not free r under our feet. */
    r->live++;
    sk_rconn_close(rc);
    rl_release(r);
}

static int send_cmd(struct sk_reslog *r, unsigned block_ms, int argc, const char *const *argv, sk_rconn_cb cb,
                    void *arg)
{
    if (r->closing || r->rc == NULL)
        return SK_ERR;
    if (block_ms > 0)
        return sk_rconn_command_block(r->rc, block_ms, argc, argv, NULL, cb, arg);
    return sk_rconn_command(r->rc, argc, argv, NULL, cb, arg);
}

/* ---- read --------------------------------------------------------------- */

enum rd_stage { RD_START, RD_GROUPS, RD_CLAIM, RD_READ, RD_DONE };

struct rd_tag {
    struct rl_read *op;
    uint64_t item;
};

struct rl_read {
    struct sk_reslog *r;
    sk_queue_batch_cb cb;
    void *arg;
    uint64_t *items; /* sorted, unique */
    size_t n_items;
    struct rd_tag *tags; /* one per item */
    size_t max;
    unsigned block_ms;
    enum rd_stage stage;
    size_t waiting;    /* commands of this stage not answered yet */
    int nogroup;       /* a log lost its group: make it again, read again */
    int retried;       /* … which happens once */
    int more_to_claim; /* an XAUTOCLAIM stopped before the end of its list */
    struct rl_vec got;
    char err[SK_ERRLEN];
};

static void rd_free(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    vec_free(&op->got);
    free(op->items);
    free(op->tags);
    free(op);
    rl_release(r);
}

/* Hand the batch to the caller: the first `max` entries, the rest to the carry. */
static void rd_deliver(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    size_t k = op->got.n < op->max ? op->got.n : op->max, n_good = 0, n_bad = 0;
    struct sk_reservation *recs = NULL;
    struct sk_queue_bad_record *bad = NULL;
    char(*sources)[SOURCE_MAX] = NULL;
    struct rl_token *t = NULL;
    struct sk_queue_batch batch = {0};

    for (size_t i = 0; i < k; i++)
        op->got.v[i].bad ? n_bad++ : n_good++;
    recs = calloc(n_good ? n_good : 1, sizeof(*recs));
    bad = calloc(n_bad ? n_bad : 1, sizeof(*bad));
    sources = calloc(n_bad ? n_bad : 1, sizeof(*sources));
    if (k > 0)
        t = calloc(1, sizeof(*t) + k * sizeof(t->pairs[0]));
    if (recs == NULL || bad == NULL || sources == NULL || (k > 0 && t == NULL)) {
        vec_move(&r->carry, &op->got, 0);
        op->cb(op->arg, SK_ERR, NULL, "out of memory");
        goto out;
    }
    n_good = n_bad = 0;
    for (size_t i = 0; i < k; i++) {
        struct rl_entry *e = &op->got.v[i];
        t->pairs[i].item = e->item;
        memcpy(t->pairs[i].id, e->id, ID_MAX);
        if (e->bad) {
            char key[KEY_MAX];
            log_key(r, e->item, key);
            snprintf(sources[n_bad], SOURCE_MAX, "%s %s", key, e->id);
            bad[n_bad] = (struct sk_queue_bad_record){.raw = e->raw, .why = e->why, .source = sources[n_bad]};
            n_bad++;
        } else {
            recs[n_good] = e->rec;
            recs[n_good++].order_no = e->order_no;
        }
    }
    if (t != NULL) {
        t->n = k;
        t->next = r->tokens;
        if (r->tokens != NULL)
            r->tokens->prev = t;
        r->tokens = t;
    }
    /* What did not fit waits for the next read, in order. */
    vec_move(&r->carry, &op->got, k);
    count(r, r->m.delivered, n_good);
    count(r, r->m.bad, n_bad);
    batch = (struct sk_queue_batch){.n = n_good, .records = recs, .n_bad = n_bad, .bad = bad, .ack_token = t};
    op->cb(op->arg, SK_OK, &batch, NULL);
out:
    free(recs);
    free(bad);
    free(sources);
}

static void rd_finish(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    if (!r->closing && op->err[0] == '\0') {
        rd_deliver(op);
    } else {
        /* Not lost: still pending in Redis under this consumer. Kept for the next
         * read unless the reader is closing. */
        if (!r->closing)
            vec_move(&r->carry, &op->got, 0);
        op->cb(op->arg, SK_ERR, NULL, op->err[0] ? op->err : "redis connection closed");
    }
    rd_free(op);
}

static void on_group(void *arg, const redisReply *reply, const char *err);
static void on_claim(void *arg, const redisReply *reply, const char *err);
static void on_read(void *arg, const redisReply *reply, const char *err);

static int rd_send_groups(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    char key[KEY_MAX];
    int sent = 0;

    for (size_t i = 0; i < op->n_items; i++) {
        const struct rl_item *it = item_find(r, op->items[i]);
        if (it == NULL || it->group_ok)
            continue;
        log_key(r, op->items[i], key);
        const char *argv[] = {"XGROUP", "CREATE", key, r->conf.group, "0", "MKSTREAM"};
        if (send_cmd(r, 0, 6, argv, on_group, &op->tags[i]) != SK_OK) {
            first_err(op->err, "cannot send XGROUP CREATE: %s", r->closing ? "closing" : "out of memory");
            break;
        }
        sent++;
    }
    return sent == 0 && op->err[0] ? SK_ERR : sent;
}

static int rd_claim_due(const struct rl_read *op)
{
    return op->max > 0 && op->got.n == 0 && uv_now(op->r->loop) >= op->r->claim_due_ms;
}

static int rd_send_claims(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    char key[KEY_MAX], idle[24], cnt[24];
    int sent = 0;

    snprintf(idle, sizeof(idle), "%u", r->conf.claim_idle_ms);
    /* Redis refuses a COUNT past LONG_MAX / 10 (it scans up to 10 x COUNT). */
    snprintf(cnt, sizeof(cnt), "%zu", op->max < CLAIM_COUNT_MAX ? op->max : CLAIM_COUNT_MAX);
    for (size_t i = 0; i < op->n_items; i++) {
        const struct rl_item *it = item_find(r, op->items[i]);
        if (it == NULL)
            continue;
        log_key(r, op->items[i], key);
        const char *argv[] = {"XAUTOCLAIM", key, r->conf.group, r->conf.consumer, idle, it->cursor, "COUNT", cnt};
        if (send_cmd(r, 0, 8, argv, on_claim, &op->tags[i]) != SK_OK) {
            first_err(op->err, "cannot send XAUTOCLAIM: %s", r->closing ? "closing" : "out of memory");
            break;
        }
        sent++;
    }
    return sent == 0 && op->err[0] ? SK_ERR : sent;
}

static int rd_send_read(struct rl_read *op)
{
    struct sk_reslog *r = op->r;
    size_t argc = 0, n = op->n_items, missing = op->max - op->got.n;
    const char **argv = malloc((9 + 2 * n) * sizeof(*argv));
    char(*keys)[KEY_MAX] = malloc((n ? n : 1) * sizeof(*keys));
    char cnt[24], block[24];
    unsigned block_ms = op->got.n == 0 ? op->block_ms : 0;
    int sent = SK_ERR;

    if (argv == NULL || keys == NULL) {
        first_err(op->err, "out of memory");
        goto out;
    }
    snprintf(cnt, sizeof(cnt), "%zu", missing);
    snprintf(block, sizeof(block), "%u", block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = r->conf.group;
    argv[argc++] = r->conf.consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = cnt;
    /* BLOCK 0 would wait for ever: without BLOCK the read answers at once. */
    if (block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    for (size_t i = 0; i < n; i++) {
        log_key(r, op->items[i], keys[i]);
        argv[argc++] = keys[i];
    }
    for (size_t i = 0; i < n; i++)
        argv[argc++] = ">";
    if (send_cmd(r, block_ms, (int)argc, argv, on_read, op) != SK_OK) {
        first_err(op->err, "cannot send XREADGROUP: %s", r->closing ? "closing" : "out of memory");
        goto out;
    }
    sent = 1;
out:
    free(argv);
    free(keys);
    return sent;
}

/* Start the next stage that has work. Returns how many commands are in flight
 * (> 0), 0 when there is nothing left to do (deliver), SK_ERR when nothing could
 * be sent (op->err says why). */
static int rd_advance(struct rl_read *op)
{
    int sent = 0;

    while (sent == 0 && op->stage != RD_DONE) {
        op->stage++;
        switch (op->stage) {
        case RD_GROUPS:
            sent = rd_send_groups(op);
            break;
        case RD_CLAIM:
            sent = rd_claim_due(op) ? rd_send_claims(op) : 0;
            break;
        case RD_READ:
            sent = op->got.n < op->max && op->n_items > 0 ? rd_send_read(op) : 0;
            break;
        default:
            break;
        }
    }
    if (sent > 0)
        op->waiting = (size_t)sent;
    return sent;
}

/* Every command of the stage has answered: go on, or finish. */
static void rd_stage_done(struct rl_read *op)
{
    struct sk_reslog *r = op->r;

    if (r->closing) {
        first_err(op->err, "redis connection closed");
        rd_finish(op);
        return;
    }
    if (op->err[0] == '\0' && op->stage == RD_CLAIM) {
        uint64_t every = r->conf.claim_idle_ms / 2 ? r->conf.claim_idle_ms / 2 : 1;
        r->claim_due_ms = op->more_to_claim ? 0 : uv_now(r->loop) + every;
    }
    if (op->err[0] == '\0' && op->nogroup) {
        op->nogroup = 0;
        op->retried = 1;
        for (size_t i = 0; i < op->n_items; i++) {
            struct rl_item *it = item_find(r, op->items[i]);
            if (it != NULL)
                it->group_ok = 0;
        }
        op->stage = RD_START;
    }
    if (op->err[0] != '\0' || rd_advance(op) <= 0)
        rd_finish(op);
}

/* An error reply of a read stage: NOGROUP is mended once, the rest fails. */
static void rd_error_reply(struct rl_read *op, const char *cmd, const redisReply *reply)
{
    if (strncmp(reply->str, "NOGROUP", 7) == 0 && !op->retried)
        op->nogroup = 1;
    else
        first_err(op->err, "redis refused %s: %s", cmd, reply->str);
}

static void on_group(void *arg, const redisReply *reply, const char *err)
{
    struct rd_tag *tag = arg;
    struct rl_read *op = tag->op;

    if (reply == NULL) {
        first_err(op->err, "%s", err);
    } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        first_err(op->err, "redis refused XGROUP CREATE: %s", reply->str);
    } else if (!op->r->closing) {
        struct rl_item *it = item_find(op->r, tag->item);
        if (it != NULL)
            it->group_ok = 1;
    }
    if (--op->waiting == 0)
        rd_stage_done(op);
}

/* XAUTOCLAIM answers [next cursor, [[id, fields] …]] (Redis 7 adds the ids of
 * entries deleted meanwhile, which it has dropped from the pending list). */
static void on_claim(void *arg, const redisReply *reply, const char *err)
{
    struct rd_tag *tag = arg;
    struct rl_read *op = tag->op;
    size_t taken = 0;

    if (reply == NULL) {
        first_err(op->err, "%s", err);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        rd_error_reply(op, "XAUTOCLAIM", reply);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
               reply->element[0]->type != REDIS_REPLY_STRING || reply->element[0]->len >= ID_MAX) {
        first_err(op->err, "redis gave an unexpected answer to XAUTOCLAIM");
    } else if (!op->r->closing && take_entries(tag->item, reply->element[1], &op->got, &taken, op->err) == SK_OK) {
        struct rl_item *it = item_find(op->r, tag->item);
        if (it != NULL)
            memcpy(it->cursor, reply->element[0]->str, reply->element[0]->len + 1);
        if (strcmp(reply->element[0]->str, "0-0") != 0)
            op->more_to_claim = 1;
        count(op->r, op->r->m.claimed, taken);
    }
    if (--op->waiting == 0)
        rd_stage_done(op);
}

/* XREADGROUP answers nil (nothing came within BLOCK) or [[key, [[id, fields] …]] …]. */
static void on_read(void *arg, const redisReply *reply, const char *err)
{
    struct rl_read *op = arg;
    size_t taken = 0;

    if (reply == NULL) {
        first_err(op->err, "%s", err);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        rd_error_reply(op, "XREADGROUP", reply);
    } else if (reply->type == REDIS_REPLY_ARRAY && !op->r->closing) {
        for (size_t i = 0; i < reply->elements && op->err[0] == '\0'; i++) {
            const redisReply *s = reply->element[i];
            uint64_t item;
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[0]->type != REDIS_REPLY_STRING ||
                key_item(op->r, s->element[0]->str, s->element[0]->len, &item) != SK_OK) {
                first_err(op->err, "redis gave an unexpected answer to XREADGROUP");
                break;
            }
            take_entries(item, s->element[1], &op->got, &taken, op->err);
        }
    } else if (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_ARRAY) {
        first_err(op->err, "redis gave an unexpected answer to XREADGROUP");
    }
    if (--op->waiting == 0)
        rd_stage_done(op);
}

static void on_rd_defer(void *arg, const redisReply *reply, const char *err)
{
    rd_finish(arg);
}

int sk_reslog_read(struct sk_reslog *r, const uint64_t *items, size_t n_items, size_t max, unsigned block_ms,
                   sk_queue_batch_cb cb, void *arg)
{
    struct rl_read *op = NULL;
    int sent, rc = SK_ERR;

    if (r == NULL || cb == NULL || r->closing || (items == NULL && n_items > 0))
        return SK_ERR;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        return SK_ERR;
    op->r = r;
    r->live++;
    op->cb = cb;
    op->arg = arg;
    op->max = max;
    op->block_ms = block_ms;
    if (items_copy(items, n_items, &op->items, &op->n_items) != SK_OK)
        goto out;
    op->tags = calloc(op->n_items ? op->n_items : 1, sizeof(*op->tags));
    if (op->tags == NULL)
        goto out;
    for (size_t i = 0; i < op->n_items; i++) {
        op->tags[i] = (struct rd_tag){.op = op, .item = op->items[i]};
        if (item_add(r, op->items[i]) != SK_OK)
            goto out;
    }
    /* Left over from the last read, for the items still followed. */
    for (size_t i = 0; i < r->carry.n; i++) {
        struct rl_entry *e = &r->carry.v[i], *mine;
        if (!has_item(op->items, op->n_items, e->item) || (mine = vec_push(&op->got)) == NULL) {
            free(e->raw);
            continue;
        }
        *mine = *e;
    }
    r->carry.n = 0;
    sent = rd_advance(op);
    if (sent == SK_ERR)
        goto out;
    /* Nothing to ask Redis (the carry is enough, no items): answer from the loop. */
    if (sent == 0 && sk_rconn_defer(r->rc, on_rd_defer, op) != SK_OK)
        goto out;
    op = NULL;
    rc = SK_OK;
out:
    if (op != NULL) {
        vec_move(&r->carry, &op->got, 0);
        rd_free(op);
    }
    return rc;
}

/* ---- ack ---------------------------------------------------------------- */

struct rl_ack {
    struct sk_reslog *r;
    sk_queue_done_cb cb;
    void *arg;
    size_t waiting;
    char err[SK_ERRLEN];
};

static int cmp_pair(const void *a, const void *b)
{
    const struct rl_pair *x = a, *y = b;
    return x->item < y->item ? -1 : x->item > y->item;
}

static void ack_step(struct rl_ack *op)
{
    struct sk_reslog *r = op->r;
    if (--op->waiting > 0)
        return;
    if (r->closing)
        first_err(op->err, "redis connection closed");
    op->cb(op->arg, op->err[0] ? SK_ERR : SK_OK, op->err[0] ? op->err : NULL);
    free(op);
    rl_release(r);
}

static void on_xack(void *arg, const redisReply *reply, const char *err)
{
    struct rl_ack *op = arg;
    if (reply == NULL)
        first_err(op->err, "%s", err);
    else if (reply->type == REDIS_REPLY_ERROR)
        first_err(op->err, "redis refused XACK: %s", reply->str);
    else if (reply->type == REDIS_REPLY_INTEGER && !op->r->closing)
        count(op->r, op->r->m.acked, reply->integer > 0 ? (size_t)reply->integer : 0);
    ack_step(op);
}

static void on_xdel(void *arg, const redisReply *reply, const char *err)
{
    struct rl_ack *op = arg;
    if (reply == NULL)
        first_err(op->err, "%s", err);
    else if (reply->type == REDIS_REPLY_ERROR)
        first_err(op->err, "redis refused XDEL: %s", reply->str);
    ack_step(op);
}

int sk_reslog_ack(struct sk_reslog *r, void *ack_token, sk_queue_done_cb cb, void *arg)
{
    struct rl_token *t = ack_token;
    struct rl_ack *op = NULL;
    const char **argv = NULL;
    char key[KEY_MAX];
    size_t sent = 0;
    int rc = SK_ERR;

    if (r == NULL || t == NULL || cb == NULL || r->closing)
        return SK_ERR;
    op = calloc(1, sizeof(*op));
    argv = malloc((t->n + 3) * sizeof(*argv));
    if (op == NULL || argv == NULL)
        goto out;
    op->r = r;
    op->cb = cb;
    op->arg = arg;
    /* One more than in flight until every command is out (none completes before
     * this returns anyway: the connection never calls back from inside a call). */
    op->waiting = 1;
    qsort(t->pairs, t->n, sizeof(t->pairs[0]), cmp_pair);
    for (size_t i = 0, j; i < t->n && op->err[0] == '\0'; i = j) {
        size_t n = 0;
        for (j = i; j < t->n && t->pairs[j].item == t->pairs[i].item; j++)
            argv[3 + n++] = t->pairs[j].id;
        log_key(r, t->pairs[i].item, key);
        /* XACK first: an entry acknowledged but not deleted (a crash in between)
         * only takes room; one deleted but still pending would come back as a
         * deleted entry. */
        argv[0] = "XACK";
        argv[1] = key;
        argv[2] = r->conf.group;
        if (send_cmd(r, 0, (int)(3 + n), argv, on_xack, op) != SK_OK) {
            first_err(op->err, "cannot send XACK: out of memory");
            break;
        }
        op->waiting++;
        sent++;
        argv[1] = "XDEL";
        argv[2] = key;
        if (send_cmd(r, 0, (int)(2 + n), argv + 1, on_xdel, op) != SK_OK) {
            first_err(op->err, "cannot send XDEL: out of memory");
            break;
        }
        op->waiting++;
        sent++;
    }
    if (sent == 0)
        goto out; /* nothing went out: the token stays the caller's */
    op->waiting--;
    r->live++;
    token_unlink(r, t);
    free(t);
    op = NULL;
    rc = SK_OK;
out:
    free(op);
    free(argv);
    return rc;
}

void sk_reslog_nack(struct sk_reslog *r, void *ack_token)
{
    struct rl_token *t = ack_token;
    /* Nothing to tell Redis: the entries stay pending and are claimed again
     * after claim_idle_ms. After close the tokens are gone already. */
    if (r == NULL || t == NULL || r->closing)
        return;
    token_unlink(r, t);
    free(t);
}

/* ---- lag ---------------------------------------------------------------- */

struct rl_lag;

struct lag_item {
    struct rl_lag *op;
    int no_key;    /* XINFO: the log does not exist */
    int has_group; /* our group is on it */
    int lag_known; /* Redis could tell the group's lag */
    long long lag, pending, xlen;
};

struct rl_lag {
    struct sk_reslog *r;
    sk_queue_lag_cb cb;
    void *arg;
    size_t n;
    struct lag_item *it;
    size_t waiting;
    char err[SK_ERRLEN];
};

static void lag_step(struct rl_lag *op)
{
    struct sk_reslog *r = op->r;
    int64_t sum = 0;

    if (--op->waiting > 0)
        return;
    if (r->closing)
        first_err(op->err, "redis connection closed");
    /* Not yet acknowledged = delivered but pending + not delivered yet. Where
     * Redis cannot tell the lag (entries deleted in the middle of the log) or no
     * consumer has read the log yet, the log's length counts: acknowledged
     * entries are deleted, so what is left is what is not acknowledged. */
    for (size_t i = 0; i < op->n; i++) {
        const struct lag_item *it = &op->it[i];
        if (it->no_key)
            continue;
        sum += it->has_group && it->lag_known ? it->lag + it->pending : it->xlen;
    }
    if (op->err[0] != '\0')
        op->cb(op->arg, SK_ERR, 0, op->err);
    else
        op->cb(op->arg, SK_OK, sum, NULL);
    free(op->it);
    free(op);
    rl_release(r);
}

/* XINFO GROUPS answers one [name, …, pending, n, …, lag, n|nil] per group. */
static void on_xinfo(void *arg, const redisReply *reply, const char *err)
{
    struct lag_item *it = arg;
    struct rl_lag *op = it->op;

    if (reply == NULL) {
        first_err(op->err, "%s", err);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "no such key") != NULL)
            it->no_key = 1;
        else
            first_err(op->err, "redis refused XINFO GROUPS: %s", reply->str);
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        first_err(op->err, "redis gave an unexpected answer to XINFO GROUPS");
    } else {
        for (size_t g = 0; g < reply->elements && !it->has_group; g++) {
            const redisReply *grp = reply->element[g];
            int mine = 0, lag_known = 0;
            long long pending = 0, lag = 0;
            if (grp->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t f = 0; f + 1 < grp->elements; f += 2) {
                const redisReply *name = grp->element[f], *v = grp->element[f + 1];
                if (name->type != REDIS_REPLY_STRING)
                    continue;
                if (strcmp(name->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                    mine = strcmp(v->str, op->r->conf.group) == 0;
                else if (strcmp(name->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                    pending = v->integer;
                else if (strcmp(name->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                    lag = v->integer, lag_known = 1;
            }
            if (mine) {
                it->has_group = 1;
                it->pending = pending;
                it->lag = lag;
                it->lag_known = lag_known;
            }
        }
    }
    lag_step(op);
}

static void on_xlen(void *arg, const redisReply *reply, const char *err)
{
    struct lag_item *it = arg;
    struct rl_lag *op = it->op;

    if (reply == NULL)
        first_err(op->err, "%s", err);
    else if (reply->type == REDIS_REPLY_ERROR)
        first_err(op->err, "redis refused XLEN: %s", reply->str);
    else if (reply->type == REDIS_REPLY_INTEGER)
        it->xlen = reply->integer;
    else
        first_err(op->err, "redis gave an unexpected answer to XLEN");
    lag_step(op);
}

static void on_lag_defer(void *arg, const redisReply *reply, const char *err)
{
    struct rl_lag *op = arg;
    op->waiting = 1;
    lag_step(op);
}

int sk_reslog_lag(struct sk_reslog *r, const uint64_t *items, size_t n_items, sk_queue_lag_cb cb, void *arg)
{
    struct rl_lag *op = NULL;
    uint64_t *ids = NULL;
    char key[KEY_MAX];
    size_t n = 0, sent = 0;
    int rc = SK_ERR;

    if (r == NULL || cb == NULL || r->closing || (items == NULL && n_items > 0))
        return SK_ERR;
    op = calloc(1, sizeof(*op));
    if (op == NULL || items_copy(items, n_items, &ids, &n) != SK_OK)
        goto out;
    op->it = calloc(n ? n : 1, sizeof(*op->it));
    if (op->it == NULL)
        goto out;
    op->r = r;
    op->cb = cb;
    op->arg = arg;
    op->n = n;
    op->waiting = 1; /* held while sending */
    for (size_t i = 0; i < n && op->err[0] == '\0'; i++) {
        op->it[i].op = op;
        log_key(r, ids[i], key);
        const char *info[] = {"XINFO", "GROUPS", key};
        const char *len[] = {"XLEN", key};
        if (send_cmd(r, 0, 3, info, on_xinfo, &op->it[i]) != SK_OK) {
            first_err(op->err, "cannot send XINFO GROUPS: out of memory");
            break;
        }
        op->waiting++;
        sent++;
        if (send_cmd(r, 0, 2, len, on_xlen, &op->it[i]) != SK_OK) {
            first_err(op->err, "cannot send XLEN: out of memory");
            break;
        }
        op->waiting++;
        sent++;
    }
    if (sent == 0 && op->err[0] != '\0')
        goto out;
    /* No items: the lag is 0, told from the loop. */
    if (sent == 0 && sk_rconn_defer(r->rc, on_lag_defer, op) != SK_OK)
        goto out;
    op->waiting--;
    r->live++;
    op = NULL;
    rc = SK_OK;
out:
    if (op != NULL)
        free(op->it);
    free(op);
    free(ids);
    return rc;
}

/* ---- append ------------------------------------------------------------- */

struct rl_append {
    struct sk_reslog *r;
    sk_queue_done_cb cb;
    void *arg;
    size_t waiting;
    char err[SK_ERRLEN];
};

static void append_step(struct rl_append *op)
{
    struct sk_reslog *r = op->r;
    if (--op->waiting > 0)
        return;
    if (r->closing)
        first_err(op->err, "redis connection closed");
    op->cb(op->arg, op->err[0] ? SK_ERR : SK_OK, op->err[0] ? op->err : NULL);
    free(op);
    rl_release(r);
}

static void on_xadd(void *arg, const redisReply *reply, const char *err)
{
    struct rl_append *op = arg;
    if (reply == NULL)
        first_err(op->err, "%s", err);
    else if (reply->type == REDIS_REPLY_ERROR)
        first_err(op->err, "redis refused XADD: %s", reply->str);
    else if (!op->r->closing)
        count(op->r, op->r->m.appended, 1);
    append_step(op);
}

static void on_append_defer(void *arg, const redisReply *reply, const char *err)
{
    struct rl_append *op = arg;
    op->waiting = 1;
    append_step(op);
}

int sk_reslog_append(struct sk_reslog *r, const struct sk_reservation *records, size_t n, sk_queue_done_cb cb,
                     void *arg)
{
    struct rl_append *op = NULL;
    char key[KEY_MAX], num[7][24];
    size_t sent = 0;
    int rc = SK_ERR;

    if (r == NULL || cb == NULL || r->closing || (records == NULL && n > 0))
        return SK_ERR;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        goto out;
    op->r = r;
    op->cb = cb;
    op->arg = arg;
    op->waiting = 1; /* held while sending */
    /* All or nothing for bad values: check every record before sending one. */
    for (size_t i = 0; i < n; i++) {
        const struct sk_reservation *x = &records[i];
        if (x->order_no == NULL || x->order_no[0] == '\0' || strlen(x->order_no) > ORDER_NO_MAX) {
            say(op->err, "record %zu: the order number must be 1 to %d bytes", i, ORDER_NO_MAX);
            break;
        }
        if (x->seq < 1 || x->price_cents < 0 || x->reserved_at_ms < 0 || x->expires_at_ms < 0) {
            say(op->err, "record %zu (order %s): seq must be at least 1, price and times not negative", i, x->order_no);
            break;
        }
    }
    for (size_t i = 0; i < n && op->err[0] == '\0'; i++) {
        const struct sk_reservation *x = &records[i];
        snprintf(num[0], sizeof(num[0]), "%" PRIu64, x->user_id);
        snprintf(num[1], sizeof(num[1]), "%" PRIu64, x->activity_id);
        snprintf(num[2], sizeof(num[2]), "%" PRIu64, x->item_id);
        snprintf(num[3], sizeof(num[3]), "%" PRIu32, x->seq);
        snprintf(num[4], sizeof(num[4]), "%" PRId64, x->price_cents);
        snprintf(num[5], sizeof(num[5]), "%" PRId64, x->reserved_at_ms);
        snprintf(num[6], sizeof(num[6]), "%" PRId64, x->expires_at_ms);
        log_key(r, x->item_id, key);
        /* The fields and their order of the stock plugin's reserve script. No
         * MAXLEN: trimming would drop reservations nobody has read yet. */
        const char *argv[] = {"XADD", key,           "*",    "order_no",       x->order_no, "user_id",
                              num[0], "activity_id", num[1], "item_id",        num[2],      "seq",
                              num[3], "price_cents", num[4], "reserved_at_ms", num[5],      "expires_at_ms",
                              num[6]};
        if (send_cmd(r, 0, (int)(sizeof(argv) / sizeof(argv[0])), argv, on_xadd, op) != SK_OK) {
            first_err(op->err, "cannot send XADD: out of memory");
            break;
        }
        op->waiting++;
        sent++;
    }
    /* Nothing in flight (no records, or refused): answer from the loop. */
    if (sent == 0 && sk_rconn_defer(r->rc, on_append_defer, op) != SK_OK)
        goto out;
    op->waiting--;
    r->live++;
    op = NULL;
    rc = SK_OK;
out:
    free(op);
    return rc;
}
