/* The scheduler thread; see scheduler.h. */
#include "scheduler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "client/client_api.h"
#include "daemon.h"
#include "db/activity_store.h"
#include "log.h"
#include "timeutil.h"

#define WHO "scheduler"

struct sk_scheduler {
    struct sk_daemon *d;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t wake;
    uv_async_t stop;
    struct sk_loop_ctx *lc;
    unsigned pending;        /* stock verbs in flight; no new tick while > 0 */
    int stopping;
    uint64_t catalog_sig;    /* what the catalog was last built from */
    /* start-up handshake */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;             /* 1 ok, -1 failed */
    char err[SK_ERRLEN];
};

/* Publishing one activity: one stock verb per item, then the state change. */
struct pub_job {
    struct sk_scheduler *s;
    uint64_t activity_id;
    size_t remaining;        /* verbs still to answer */
    int failed;
    int closing;             /* closing items of an activity cancelled meanwhile */
};

static void close_items(struct sk_scheduler *s, const struct sk_activity *a);

static void job_done(struct pub_job *job)
{
    struct sk_scheduler *s = job->s;
    char err[SK_ERRLEN];
    if (job->closing) {
        sk_info(WHO, "activity %llu was cancelled while it was published: its items are closed",
                (unsigned long long)job->activity_id);
        goto out;
    }
    if (job->failed || s->stopping)
        goto out; /* the next tick tries again; publishing is idempotent */
    unsigned from = 1u << SK_ACT_SCHEDULED;
    int rc = sk_store_activity_transition(&s->lc->db, job->activity_id, from, SK_ACT_PUBLISHED, -1, err, sizeof(err));
    if (rc == SK_OK) {
        sk_info(WHO, "activity %llu published", (unsigned long long)job->activity_id);
    } else if (rc == SK_STORE_CONFLICT) {
        /* Cancelled (or changed) by an operator while we published: take it back. */
        struct sk_activity a;
        if (sk_store_activity_get(&s->lc->db, job->activity_id, &a, err, sizeof(err)) == SK_OK) {
            if (a.state == SK_ACT_CANCELLED)
                close_items(s, &a);
            sk_activity_free(&a);
        }
    } else {
        sk_warn(WHO, "activity %llu: cannot record publishing: %s", (unsigned long long)job->activity_id, err);
    }
out:
    free(job);
}

static void on_stock_done(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct pub_job *job = arg;
    (void)reply;
    job->s->pending--;
    if (status != SK_OK) {
        job->failed = 1;
        sk_warn(WHO, "activity %llu: stock store: %s", (unsigned long long)job->activity_id, err ? err : "failed");
    }
    if (--job->remaining == 0)
        job_done(job);
}

/* Run one stock verb per item of `a` for a new job; job_done runs after the last. */
static void run_job(struct sk_scheduler *s, const struct sk_activity *a, int closing)
{
    const struct sk_stock_ops *ops = s->d->stock_ops;
    struct pub_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        sk_err(WHO, "out of memory");
        return;
    }
    job->s = s;
    job->activity_id = a->id;
    job->closing = closing;
    job->remaining = a->n_items + 1; /* +1 held until every verb is started */
    for (size_t i = 0; i < a->n_items; i++) {
        const struct sk_item *it = &a->items[i];
        int rc;
        if (closing) {
            rc = ops->set_state(s->lc->stock_conn, it->id, SK_STOCK_CLOSED, on_stock_done, job);
        } else {
            struct sk_stock_item si = {
                .activity_id = a->id,
                .item_id = it->id,
                .stock = it->stock,
                .per_user_limit = it->per_user_limit,
                .price_cents = it->seckill_price_cents,
                .starts_at_ms = a->starts_at_ms,
                .ends_at_ms = a->ends_at_ms,
            };
            rc = ops->publish(s->lc->stock_conn, &si, on_stock_done, job);
        }
        if (rc == SK_OK) {
            s->pending++;
        } else {
            job->failed = 1;
            job->remaining--;
        }
    }
    if (--job->remaining == 0)
        job_done(job);
}

static void close_items(struct sk_scheduler *s, const struct sk_activity *a)
{
    run_job(s, a, 1);
}

static void transition(struct sk_scheduler *s, const struct sk_activity *a, unsigned from_state,
                       enum sk_activity_state to)
{
    char err[SK_ERRLEN];
    int rc = sk_store_activity_transition(&s->lc->db, a->id, 1u << from_state, to, -1, err, sizeof(err));
    if (rc == SK_OK)
        sk_info(WHO, "activity %llu %s -> %s", (unsigned long long)a->id, sk_activity_state_name(a->state),
                sk_activity_state_name(to));
    else if (rc != SK_STORE_CONFLICT)
        sk_warn(WHO, "activity %llu: %s", (unsigned long long)a->id, err);
}

/* A fingerprint of what the catalog shows: ids, states, update times, items. */
static uint64_t catalog_signature(const struct sk_activity *list, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the fields */
    for (size_t i = 0; i < n; i++) {
        uint64_t f[4] = {list[i].id, (uint64_t)list[i].state, (uint64_t)list[i].updated_at_ms, list[i].n_items};
        for (size_t k = 0; k < 4; k++) {
            h ^= f[k];
            h *= 1099511628211ULL;
        }
    }
    return h;
}

struct level_query {
    struct sk_scheduler *s;
    uint64_t item_id;
};

static void on_stock_level(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct level_query *q = arg;
    struct sk_scheduler *s = q->s;
    uint64_t item_id = q->item_id;
    (void)err;
    free(q);
    s->pending--;
    if (status != SK_OK || s->stopping)
        return;
    /* The scheduler thread is the catalog's only writer, so this pointer stays
     * valid for the whole callback. */
    struct sk_catalog_item *ci = sk_catalog_item(sk_catalog_current(s->d->catalog), item_id);
    if (ci == NULL)
        return;
    atomic_store(&ci->initial, reply->initial);
    atomic_store(&ci->remaining, reply->remaining);
    /* A unit came back (a closed order, units added): buyers may try again. */
    if (reply->remaining > 0 && atomic_load(&ci->sold_out))
        atomic_store(&ci->sold_out, 0);
}

/* Rebuild the catalog when the activities changed, then ask the stock store for
 * every item's level, so that `remaining` and the sold-out flags follow it. */
static void refresh_catalog(struct sk_scheduler *s, const struct sk_activity *list, size_t n, int64_t now)
{
    uint64_t sig = catalog_signature(list, n);
    if (sig != s->catalog_sig) {
        if (sk_catalog_replace(s->d->catalog, list, n, now) != SK_OK) {
            sk_warn(WHO, "out of memory while rebuilding the catalog");
            return;
        }
        s->catalog_sig = sig;
    }
    const struct sk_catalog_snapshot *snap = sk_catalog_current(s->d->catalog);
    for (size_t i = 0; i < snap->n_items; i++) {
        struct level_query *q = malloc(sizeof(*q));
        if (q == NULL)
            return;
        q->s = s;
        q->item_id = snap->items_by_id[i]->item.id;
        if (s->d->stock_ops->query(s->lc->stock_conn, q->item_id, on_stock_level, q) == SK_OK)
            s->pending++;
        else
            free(q);
    }
}

static void tick(struct sk_scheduler *s)
{
    char err[SK_ERRLEN];
    struct sk_activity *list = NULL;
    size_t n = 0;

    if (s->stopping)
        return;
    sk_stats_sample(&s->d->stats, sk_now_ms(), sk_client_reserved_total());
    if (s->pending > 0)
        return;
    if (sk_db_ping(&s->lc->db, err, sizeof(err)) != SK_OK) {
        if (atomic_exchange(&s->d->db_ok, 0))
            sk_warn(WHO, "MariaDB unreachable: %s", err);
        return;
    }
    if (!atomic_exchange(&s->d->db_ok, 1))
        sk_info(WHO, "MariaDB reachable");

    unsigned mask = (1u << SK_ACT_SCHEDULED) | (1u << SK_ACT_PUBLISHED) | (1u << SK_ACT_RUNNING);
    int64_t now = sk_now_ms();
    /* Sales that ended lately stay in the list, so that the catalog answers their
     * buyers "ended" rather than "not found". */
    if (sk_store_activity_list_live(&s->lc->db, mask, now - SK_CATALOG_KEEP_ENDED_MS, &list, &n, err, sizeof(err)) !=
        SK_OK) {
        sk_warn(WHO, "cannot list activities: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sk_activity *a = &list[i];
        if (a->state == SK_ACT_ENDED)
            continue;
        if (a->ends_at_ms <= now) {
            transition(s, a, a->state, SK_ACT_ENDED);
        } else if (a->state == SK_ACT_SCHEDULED && a->publish_at_ms <= now) {
            run_job(s, a, 0);
        } else if (a->state == SK_ACT_PUBLISHED && a->starts_at_ms <= now) {
            transition(s, a, SK_ACT_PUBLISHED, SK_ACT_RUNNING);
        }
    }
    refresh_catalog(s, list, n, now);
    sk_activity_list_free(list, n);
}

static void on_timer(uv_timer_t *t)
{
    tick(t->data);
}

static void on_wake(uv_async_t *h)
{
    tick(h->data);
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void on_stop(uv_async_t *h)
{
    struct sk_scheduler *s = h->data;
    s->stopping = 1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_close);
    uv_close((uv_handle_t *)&s->wake, on_close);
    uv_close((uv_handle_t *)&s->stop, on_close);
    sk_loop_ctx_fini(s->lc);
    s->lc = NULL;
}

static void report_start(struct sk_scheduler *s, int started)
{
    pthread_mutex_lock(&s->mu);
    s->started = started;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *thread_main(void *arg)
{
    struct sk_scheduler *s = arg;
    if (sk_loop_ctx_init(s->d, 1000, &s->loop, 1, &s->lc, s->err) != SK_OK) {
        report_start(s, -1);
        return NULL;
    }
    s->timer.data = s->wake.data = s->stop.data = s;
    uv_timer_init(&s->loop, &s->timer);
    uv_async_init(&s->loop, &s->wake, on_wake);
    uv_async_init(&s->loop, &s->stop, on_stop);
    uv_timer_start(&s->timer, on_timer, 0, s->d->cfg.scheduler_tick_ms);
    report_start(s, 1);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct sk_scheduler *sk_sched_start(struct sk_daemon *d, char *err)
{
    struct sk_scheduler *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return NULL;
    }
    s->d = d;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (uv_loop_init(&s->loop) != 0) {
        snprintf(err, SK_ERRLEN, "scheduler: cannot create its event loop");
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
        snprintf(err, SK_ERRLEN, "scheduler: cannot start its thread");
        uv_loop_close(&s->loop);
        goto fail;
    }
    pthread_mutex_lock(&s->mu);
    while (s->started == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->started < 0) {
        pthread_join(s->thread, NULL);
        snprintf(err, SK_ERRLEN, "scheduler: %.230s", s->err);
        uv_loop_close(&s->loop);
        goto fail;
    }
    return s;
fail:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return NULL;
}

void sk_sched_wake(struct sk_scheduler *s)
{
    if (s != NULL)
        uv_async_send(&s->wake);
}

void sk_sched_stop(struct sk_scheduler *s)
{
    if (s == NULL)
        return;
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    if (uv_loop_close(&s->loop) != 0)
        sk_warn(WHO, "event loop closed with handles left open");
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
