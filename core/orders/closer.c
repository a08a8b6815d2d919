/* The order closer thread; see closer.h. */
#include "closer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon.h"
#include "core/db/payment_store.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#define WHO "closer"
#define ROUND_MS 1000
#define DUE_MAX 200
#define UNRETURNED_MAX 200
#define STALE_MAX 50
#define STALE_PAYING_MS (120LL * 1000) /* a notify this late is looked for at the gateway */
#define REFUNDS_MAX 50

enum task_kind { T_DUE, T_UNRETURNED, T_STALE, T_REFUND };

struct task {
    enum task_kind kind;
    struct sk_due_order o;
    struct sk_pending_refund r;
};

struct sk_closer {
    struct sk_daemon *d;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t wake, stop;
    struct sk_db db;
    void *stock_conn, *pay_conn;
    const struct sk_payment_ops *pay;  /* NULL without a payment plugin */
    int stopping, running;
    struct task *tasks;                /* this round's work, done one at a time */
    size_t n_tasks, next;
    struct task *cur;
    struct sk_metric *m_closed, *m_returned, *m_paid_late_found, *m_refunds;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    char err[SK_ERRLEN];
};

static void run_next(struct sk_closer *c);

static void mark_paid(struct sk_closer *c, const char *trade_no, int64_t amount)
{
    char err[SK_ERRLEN], refund_no[64];
    int64_t refund_cents = 0;
    enum sk_paid_result r;
    if (sk_store_payment_paid(&c->db, c->d->payment.desc->name, c->cur->o.order_no, trade_no, amount, NULL, &r,
                              refund_no, &refund_cents, err, sizeof(err)) != SK_OK) {
        sk_warn(WHO, "order %s: cannot record its payment: %s", c->cur->o.order_no, err);
        return;
    }
    if (r == SK_PAID_NOW) {
        sk_metric_add(c->m_paid_late_found, 1);
        sk_info(WHO, "order %s was paid at the gateway: now paid", c->cur->o.order_no);
    } else if (r == SK_PAID_AMOUNT_MISMATCH) {
        sk_err(WHO, "order %s: the gateway's amount differs from the order's; left as it is", c->cur->o.order_no);
    }
}

static void on_released(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct sk_closer *c = arg;
    char dberr[SK_ERRLEN];
    if (status != SK_OK) {
        if (!c->stopping)
            sk_warn(WHO, "order %s: unit not returned yet (retried): %s", c->cur->o.order_no, err ? err : "failed");
    } else if (sk_store_order_unit_returned(&c->db, c->cur->o.order_no, dberr, sizeof(dberr)) != SK_OK) {
        sk_warn(WHO, "order %s: unit returned, but not recorded (the release is idempotent): %s",
                c->cur->o.order_no, dberr);
    } else {
        if (reply->changed)
            sk_metric_add(c->m_returned, 1);
        sk_debug(WHO, "order %s: unit returned to item %llu", c->cur->o.order_no,
                 (unsigned long long)c->cur->o.item_id);
    }
    run_next(c);
}

static void release_unit(struct sk_closer *c)
{
    const struct sk_due_order *o = &c->cur->o;
    if (c->d->stock_ops->release(c->stock_conn, o->item_id, o->user_id, o->order_no, on_released, c) != SK_OK)
        run_next(c);
}

/* Close the order in MariaDB (only if still unpaid), then give its unit back. */
static void close_order(struct sk_closer *c)
{
    char err[SK_ERRLEN];
    int rc = sk_store_order_close(&c->db, c->cur->o.order_no, "timeout", err, sizeof(err));
    if (rc == SK_OK) {
        sk_metric_add(c->m_closed, 1);
        sk_info(WHO, "order %s closed: not paid in time", c->cur->o.order_no);
        release_unit(c);
        return;
    }
    if (rc != SK_STORE_CONFLICT)
        sk_warn(WHO, "order %s: cannot close: %s", c->cur->o.order_no, err);
    run_next(c);
}

static void on_gateway_close(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    struct sk_closer *c = arg;
    if (status != SK_OK) {
        /* The gateway is away: the order stays open and is tried again next round. */
        if (!c->stopping)
            sk_warn(WHO, "order %s: cannot close the trade yet: %s", c->cur->o.order_no, err ? err : "failed");
        run_next(c);
        return;
    }
    if (res->status == SK_TRADE_PAID) {
        mark_paid(c, res->trade_no, res->amount_cents);
        run_next(c);
        return;
    }
    close_order(c);
}

static void on_due_query(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    struct sk_closer *c = arg;
    if (status != SK_OK) {
        if (!c->stopping)
            sk_warn(WHO, "order %s: cannot ask the gateway yet: %s", c->cur->o.order_no, err ? err : "failed");
        run_next(c);
        return;
    }
    if (res->status == SK_TRADE_PAID) {
        mark_paid(c, res->trade_no, res->amount_cents);
        run_next(c);
        return;
    }
    if (c->pay->close(c->pay_conn, c->cur->o.order_no, on_gateway_close, c) != SK_OK)
        run_next(c);
}

static void on_stale_query(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    struct sk_closer *c = arg;
    (void)err;
    if (status == SK_OK && res->status == SK_TRADE_PAID)
        mark_paid(c, res->trade_no, res->amount_cents);
    run_next(c);
}

static void on_refund(void *arg, int status, const struct sk_pay_result *res, const char *err)
{
    struct sk_closer *c = arg;
    char dberr[SK_ERRLEN];
    (void)res;
    if (status != SK_OK) {
        if (!c->stopping) {
            sk_warn(WHO, "refund %s: not made yet (tried again in a minute): %s", c->cur->r.refund_no,
                    err ? err : "failed");
            if (sk_store_refund_failed(&c->db, c->cur->r.refund_no, dberr, sizeof(dberr)) != SK_OK)
                sk_warn(WHO, "refund %s: %s", c->cur->r.refund_no, dberr);
        }
    } else if (sk_store_refund_done(&c->db, c->cur->r.refund_no, dberr, sizeof(dberr)) != SK_OK) {
        sk_warn(WHO, "refund %s made, not recorded (a retry refunds nothing more): %s", c->cur->r.refund_no, dberr);
    } else {
        sk_metric_add(c->m_refunds, 1);
        sk_info(WHO, "order %s: late payment refunded (%s)", c->cur->r.order_no, c->cur->r.refund_no);
    }
    run_next(c);
}

static void run_next(struct sk_closer *c)
{
    if (c->stopping || c->next >= c->n_tasks) {
        free(c->tasks);
        c->tasks = NULL;
        c->n_tasks = c->next = 0;
        c->cur = NULL;
        c->running = 0;
        return;
    }
    struct task *t = c->cur = &c->tasks[c->next++];
    int rc = SK_OK;
    switch (t->kind) {
    case T_DUE:
        if (c->pay != NULL && t->o.has_payment)
            rc = c->pay->query(c->pay_conn, t->o.order_no, on_due_query, c);
        else
            close_order(c);
        break;
    case T_UNRETURNED:
        release_unit(c);
        break;
    case T_STALE:
        rc = c->pay->query(c->pay_conn, t->o.order_no, on_stale_query, c);
        break;
    case T_REFUND:
        rc = c->pay->refund(c->pay_conn, t->r.order_no, t->r.refund_no, t->r.amount_cents,
                            "paid after the order was closed", on_refund, c);
        break;
    }
    if (rc != SK_OK)
        run_next(c);
}

/* Append the rows of one list as tasks. */
static void add_tasks(struct sk_closer *c, enum task_kind kind, const struct sk_due_order *o,
                      const struct sk_pending_refund *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct task *t = &c->tasks[c->n_tasks++];
        memset(t, 0, sizeof(*t));
        t->kind = kind;
        if (o)
            t->o = o[i];
        if (r)
            t->r = r[i];
    }
}

static void round_start(struct sk_closer *c)
{
    char err[SK_ERRLEN];
    size_t n;
    struct sk_due_order *o = NULL;
    struct sk_pending_refund *r = NULL;
    if (c->running || c->stopping || sk_db_ping(&c->db, err, sizeof(err)) != SK_OK)
        return;
    size_t cap = DUE_MAX + UNRETURNED_MAX + STALE_MAX + REFUNDS_MAX;
    c->tasks = calloc(cap, sizeof(*c->tasks));
    o = calloc(DUE_MAX > UNRETURNED_MAX ? DUE_MAX : UNRETURNED_MAX, sizeof(*o));
    r = calloc(REFUNDS_MAX, sizeof(*r));
    if (c->tasks == NULL || o == NULL || r == NULL)
        goto fail;
    c->n_tasks = c->next = 0;
    int64_t now = sk_now_ms();
    if (sk_store_orders_due(&c->db, now, DUE_MAX, o, &n, err, sizeof(err)) != SK_OK)
        goto fail;
    add_tasks(c, T_DUE, o, NULL, n);
    if (sk_store_orders_unreturned(&c->db, UNRETURNED_MAX, o, &n, err, sizeof(err)) != SK_OK)
        goto fail;
    add_tasks(c, T_UNRETURNED, o, NULL, n);
    if (c->pay != NULL) {
        if (sk_store_orders_stale_paying(&c->db, now, STALE_PAYING_MS, STALE_MAX, o, &n, err, sizeof(err)) != SK_OK)
            goto fail;
        add_tasks(c, T_STALE, o, NULL, n);
        if (sk_store_refunds_pending(&c->db, REFUNDS_MAX, r, &n, err, sizeof(err)) != SK_OK)
            goto fail;
        add_tasks(c, T_REFUND, NULL, r, n);
    }
    free(o);
    free(r);
    c->running = 1;
    run_next(c);
    return;
fail:
    if (err[0])
        sk_warn(WHO, "%s", err);
    free(o);
    free(r);
    free(c->tasks);
    c->tasks = NULL;
    c->n_tasks = 0;
}

static void on_timer(uv_timer_t *t)
{
    round_start(t->data);
}

static void on_wake(uv_async_t *a)
{
    round_start(a->data);
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void on_stop(uv_async_t *a)
{
    struct sk_closer *c = a->data;
    c->stopping = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_close);
    uv_close((uv_handle_t *)&c->wake, on_close);
    uv_close((uv_handle_t *)&c->stop, on_close);
    /* verbs in flight fail into run_next, which ends the round */
    if (c->pay_conn)
        c->pay->detach(c->pay_conn);
    c->d->stock_ops->detach(c->stock_conn);
    c->pay_conn = c->stock_conn = NULL;
}

static void report_start(struct sk_closer *c, int started)
{
    pthread_mutex_lock(&c->mu);
    c->started = started;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *thread_main(void *arg)
{
    struct sk_closer *c = arg;
    char dberr[SK_ERRLEN];
    if (c->d->stock_ops->attach(c->d->stock.instance, &c->loop, &c->stock_conn, c->err) != SK_OK)
        goto fail;
    if (c->pay != NULL && c->pay->attach(c->d->payment.instance, &c->loop, &c->pay_conn, c->err) != SK_OK) {
        c->d->stock_ops->detach(c->stock_conn);
        goto fail_loop;
    }
    if (sk_db_open_config(&c->db, &c->d->cfg, dberr, sizeof(dberr)) != SK_OK) {
        snprintf(c->err, sizeof(c->err), "%.200s", dberr);
        if (c->pay_conn)
            c->pay->detach(c->pay_conn);
        c->d->stock_ops->detach(c->stock_conn);
        goto fail_loop;
    }
    c->timer.data = c->wake.data = c->stop.data = c;
    uv_timer_init(&c->loop, &c->timer);
    uv_async_init(&c->loop, &c->wake, on_wake);
    uv_async_init(&c->loop, &c->stop, on_stop);
    uv_timer_start(&c->timer, on_timer, ROUND_MS, ROUND_MS);
    report_start(c, 1);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    free(c->tasks);
    sk_db_close(&c->db);
    return NULL;
fail_loop:
    uv_run(&c->loop, UV_RUN_DEFAULT); /* let the plugins close their handles */
fail:
    report_start(c, -1);
    return NULL;
}

struct sk_closer *sk_closer_start(struct sk_daemon *d, char *err)
{
    struct sk_closer *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return NULL;
    }
    c->d = d;
    c->pay = d->payment.desc ? sk_plugin_payment_ops(&d->payment) : NULL;
    c->m_closed = sk_metric_counter("seckill_orders_closed_total", "reason=\"timeout\"", "Orders closed unpaid");
    c->m_returned = sk_metric_counter("seckill_units_returned_total", "", "Units of closed orders given back");
    c->m_paid_late_found = sk_metric_counter("seckill_payments_found_by_query_total", "",
                                             "Payments found by asking the gateway (no notify)");
    c->m_refunds = sk_metric_counter("seckill_refunds_total", "", "Late payments refunded");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (uv_loop_init(&c->loop) != 0) {
        snprintf(err, SK_ERRLEN, "closer: cannot create its event loop");
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        snprintf(err, SK_ERRLEN, "closer: cannot start its thread");
        uv_loop_close(&c->loop);
        goto fail;
    }
    pthread_mutex_lock(&c->mu);
    while (c->started == 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (c->started < 0) {
        pthread_join(c->thread, NULL);
        snprintf(err, SK_ERRLEN, "closer: %.200s", c->err);
        uv_loop_close(&c->loop);
        goto fail;
    }
    return c;
fail:
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return NULL;
}

void sk_closer_wake(struct sk_closer *c)
{
    if (c != NULL)
        uv_async_send(&c->wake);
}

void sk_closer_stop(struct sk_closer *c)
{
    if (c == NULL)
        return;
    uv_async_send(&c->stop);
    pthread_join(c->thread, NULL);
    if (uv_loop_close(&c->loop) != 0)
        sk_warn(WHO, "event loop closed with handles left open");
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
