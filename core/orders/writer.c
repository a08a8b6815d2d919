/* The order writer thread; see writer.h. */
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon.h"
#include "core/db/order_store.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#define WHO "order writer"
#define BATCH_MAX 1000           /* reservations per transaction */
#define WAIT_MS 100              /* how long a consume may wait for records */
#define IDLE_MS 200              /* pause when there is nothing to follow */
#define ITEMS_REFRESH_MS 1000    /* how often the followed items and the lag are read */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define FOLLOW_ENDED_MS (24LL * 3600 * 1000) /* logs of ended sales are followed this long */

/* A batch held by the writer between delivery and acknowledgement. */
struct held_batch {
    struct sk_reservation *recs;
    size_t n;
    struct sk_queue_bad_record *bad;
    size_t n_bad;
    char *strings;               /* every string of recs and bad, one allocation */
    void *ack_token;
};

struct sk_writer {
    struct sk_daemon *d;
    const struct sk_queue_ops *ops;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t timer;            /* next step: consume, retry a write */
    uv_timer_t refresh;          /* followed items and lag */
    uv_async_t stop;
    void *conn;                  /* queue plugin connection */
    struct sk_db db;
    int has_db;
    int stopping;
    int busy;                    /* a consume or ack is in flight */
    unsigned retry_ms;
    struct held_batch held;      /* n + n_bad > 0 while a batch waits for MariaDB */
    uint64_t *items;
    size_t n_items;
    atomic_llong lag, written;
    struct sk_metric *m_written, *m_duplicates, *m_parked, *m_retries, *m_lag;
    int lag_pending;
    /* start-up handshake */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    char err[SK_ERRLEN];
};

static void step(struct sk_writer *w, unsigned delay_ms);

static void held_free(struct held_batch *h)
{
    free(h->recs);
    free(h->bad);
    free(h->strings);
    memset(h, 0, sizeof(*h));
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 1;
}

/* Copy a delivered batch: the plugin's copy is valid only during its callback. */
static int held_copy(struct held_batch *h, const struct sk_queue_batch *b)
{
    size_t bytes = 0;
    for (size_t i = 0; i < b->n; i++)
        bytes += slen(b->records[i].order_no);
    for (size_t i = 0; i < b->n_bad; i++)
        bytes += slen(b->bad[i].raw) + slen(b->bad[i].why) + slen(b->bad[i].source);
    memset(h, 0, sizeof(*h));
    h->recs = calloc(b->n ? b->n : 1, sizeof(*h->recs));
    h->bad = calloc(b->n_bad ? b->n_bad : 1, sizeof(*h->bad));
    h->strings = malloc(bytes ? bytes : 1);
    if (h->recs == NULL || h->bad == NULL || h->strings == NULL) {
        held_free(h);
        return SK_ERR;
    }
    char *p = h->strings;
#define COPY(dst, src)                                                                                                 \
    do {                                                                                                               \
        size_t l_ = slen(src);                                                                                         \
        memcpy(p, (src) ? (src) : "", l_);                                                                             \
        (dst) = p;                                                                                                     \
        p += l_;                                                                                                       \
    } while (0)
    for (size_t i = 0; i < b->n; i++) {
        h->recs[i] = b->records[i];
        COPY(h->recs[i].order_no, b->records[i].order_no);
    }
    for (size_t i = 0; i < b->n_bad; i++) {
        COPY(h->bad[i].raw, b->bad[i].raw);
        COPY(h->bad[i].why, b->bad[i].why);
        COPY(h->bad[i].source, b->bad[i].source);
    }
#undef COPY
    h->n = b->n;
    h->n_bad = b->n_bad;
    h->ack_token = b->ack_token;
    return SK_OK;
}

static void on_acked(void *arg, int status, const char *err)
{
    struct sk_writer *w = arg;
    w->busy = 0;
    if (status != SK_OK)
        /* The orders are committed: a redelivery will be a no-op. */
        sk_warn(WHO, "acknowledging a written batch failed (it will come again, harmlessly): %s",
                err ? err : "unknown error");
    step(w, 0);
}

/* Write the held batch; on success acknowledge it, else retry later. */
static void write_held(struct sk_writer *w)
{
    char err[SK_ERRLEN];
    struct sk_order_batch_result res;
    struct held_batch *h = &w->held;
    if (sk_db_ping(&w->db, err, sizeof(err)) != SK_OK ||
        sk_store_orders_insert(&w->db, h->recs, h->n, h->bad, h->n_bad, &res, err, sizeof(err)) != SK_OK) {
        if (w->retry_ms == RETRY_MIN_MS)
            sk_warn(WHO, "cannot write %zu orders, retrying until MariaDB takes them: %s", h->n, err);
        sk_metric_add(w->m_retries, 1);
        step(w, w->retry_ms);
        w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
        return;
    }
    if (w->retry_ms > RETRY_MIN_MS)
        sk_info(WHO, "MariaDB takes orders again");
    w->retry_ms = RETRY_MIN_MS;
    atomic_fetch_add(&w->written, (long long)res.inserted);
    sk_metric_add(w->m_written, (int64_t)res.inserted);
    sk_metric_add(w->m_duplicates, (int64_t)res.duplicates);
    sk_metric_add(w->m_parked, (int64_t)res.parked);
    if (res.parked > 0)
        sk_warn(WHO, "%zu record%s parked in parked_records", res.parked, res.parked == 1 ? "" : "s");
    void *token = h->ack_token;
    h->ack_token = NULL;
    held_free(h);
    if (token == NULL) {
        step(w, 0);
        return;
    }
    w->busy = 1;
    if (w->ops->ack(w->conn, token, on_acked, w) != SK_OK) {
        w->busy = 0;
        sk_warn(WHO, "cannot acknowledge a written batch (it will come again, harmlessly)");
        step(w, RETRY_MIN_MS);
    }
}

static void on_batch(void *arg, int status, const struct sk_queue_batch *b, const char *err)
{
    struct sk_writer *w = arg;
    w->busy = 0;
    if (status != SK_OK) {
        if (!w->stopping)
            sk_debug(WHO, "queue: %s", err ? err : "failed");
        step(w, w->retry_ms);
        w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
        return;
    }
    w->retry_ms = RETRY_MIN_MS;
    if (b->n == 0 && b->n_bad == 0) {
        if (b->ack_token)
            w->ops->nack(w->conn, b->ack_token);
        step(w, w->stopping ? 0 : 1);
        return;
    }
    if (w->stopping || held_copy(&w->held, b) != SK_OK) {
        /* Given back: delivered again to this or another daemon. */
        if (b->ack_token)
            w->ops->nack(w->conn, b->ack_token);
        if (!w->stopping)
            sk_err(WHO, "out of memory: a batch of %zu is given back", b->n);
        step(w, RETRY_MIN_MS);
        return;
    }
    write_held(w);
}

static void on_timer(uv_timer_t *t)
{
    struct sk_writer *w = t->data;
    if (w->stopping || w->busy)
        return;
    if (w->held.n + w->held.n_bad > 0) {
        write_held(w);
        return;
    }
    if (w->n_items == 0) {
        step(w, IDLE_MS);
        return;
    }
    w->busy = 1;
    if (w->ops->consume(w->conn, w->items, w->n_items, BATCH_MAX, WAIT_MS, on_batch, w) != SK_OK) {
        w->busy = 0;
        step(w, w->retry_ms);
    }
}

static void step(struct sk_writer *w, unsigned delay_ms)
{
    if (!w->stopping)
        uv_timer_start(&w->timer, on_timer, delay_ms, 0);
}

static void on_lag(void *arg, int status, int64_t lag, const char *err)
{
    struct sk_writer *w = arg;
    (void)err;
    w->lag_pending = 0;
    if (status == SK_OK) {
        atomic_store(&w->lag, lag);
        sk_metric_set(w->m_lag, lag);
    }
}

/* The items whose reservation logs are followed: those of activities on sale, and
 * of sales that ended recently (their last reservations may still be in flight). */
static void refresh_items(struct sk_writer *w)
{
    static const char sql_fmt[] =
        "SELECT i.id FROM items i JOIN activities a ON a.id = i.activity_id "
        "WHERE a.state IN ('published','running','ended','cancelled') "
        "AND a.ends_at > FROM_UNIXTIME(%lld) ORDER BY i.id";
    char sql[sizeof(sql_fmt) + 32], err[SK_ERRLEN];
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    if (sk_db_ping(&w->db, err, sizeof(err)) != SK_OK)
        return;
    snprintf(sql, sizeof(sql), sql_fmt, (long long)((sk_now_ms() - FOLLOW_ENDED_MS) / 1000));
    if (mysql_query(w->db.conn, sql) != 0 || (res = mysql_store_result(w->db.conn)) == NULL) {
        sk_warn(WHO, "cannot list the items to follow: %s", mysql_error(w->db.conn));
        return;
    }
    size_t n = (size_t)mysql_num_rows(res), k = 0;
    uint64_t *items = calloc(n ? n : 1, sizeof(*items));
    if (items == NULL) {
        mysql_free_result(res);
        return;
    }
    while ((row = mysql_fetch_row(res)) != NULL && k < n)
        items[k++] = strtoull(row[0], NULL, 10);
    mysql_free_result(res);
    free(w->items);
    w->items = items;
    w->n_items = k;
}

static void on_refresh(uv_timer_t *t)
{
    struct sk_writer *w = t->data;
    if (w->stopping)
        return;
    refresh_items(w);
    if (w->n_items == 0) {
        atomic_store(&w->lag, 0);
        sk_metric_set(w->m_lag, 0);
    } else if (!w->lag_pending && w->ops->lag(w->conn, w->items, w->n_items, on_lag, w) == SK_OK) {
        w->lag_pending = 1;
    }
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void on_stop(uv_async_t *a)
{
    struct sk_writer *w = a->data;
    w->stopping = 1;
    /* A batch still waiting for MariaDB is given back whole: it comes again. */
    if (w->held.ack_token)
        w->ops->nack(w->conn, w->held.ack_token);
    held_free(&w->held);
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->refresh);
    uv_close((uv_handle_t *)&w->timer, on_close);
    uv_close((uv_handle_t *)&w->refresh, on_close);
    uv_close((uv_handle_t *)&w->stop, on_close);
    w->ops->detach(w->conn);
    w->conn = NULL;
}

static void report_start(struct sk_writer *w, int started)
{
    pthread_mutex_lock(&w->mu);
    w->started = started;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
    struct sk_writer *w = arg;
    char dberr[SK_ERRLEN];
    if (w->ops->attach(w->d->queue.instance, &w->loop, &w->conn, w->err) != SK_OK) {
        report_start(w, -1);
        return NULL;
    }
    if (sk_db_open_config(&w->db, &w->d->cfg, dberr, sizeof(dberr)) != SK_OK) {
        snprintf(w->err, sizeof(w->err), "%.200s", dberr);
        w->ops->detach(w->conn);
        uv_run(&w->loop, UV_RUN_DEFAULT); /* let the plugin close its handles */
        report_start(w, -1);
        return NULL;
    }
    w->has_db = 1;
    w->timer.data = w->refresh.data = w->stop.data = w;
    uv_timer_init(&w->loop, &w->timer);
    uv_timer_init(&w->loop, &w->refresh);
    uv_async_init(&w->loop, &w->stop, on_stop);
    refresh_items(w);
    uv_timer_start(&w->refresh, on_refresh, ITEMS_REFRESH_MS, ITEMS_REFRESH_MS);
    step(w, 0);
    report_start(w, 1);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sk_db_close(&w->db);
    return NULL;
}

struct sk_writer *sk_writer_start(struct sk_daemon *d, char *err)
{
    struct sk_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return NULL;
    }
    w->d = d;
    w->ops = sk_plugin_queue_ops(&d->queue);
    w->retry_ms = RETRY_MIN_MS;
    atomic_init(&w->lag, -1);
    atomic_init(&w->written, 0);
    w->m_written = sk_metric_counter("seckill_orders_written_total", "", "Orders inserted into MariaDB");
    w->m_duplicates = sk_metric_counter("seckill_orders_duplicate_total", "",
                                        "Reservations delivered again whose order already existed (no effect)");
    w->m_parked = sk_metric_counter("seckill_orders_parked_total", "", "Queue records parked in parked_records");
    w->m_retries = sk_metric_counter("seckill_orders_write_retries_total", "", "Batch writes retried (MariaDB down)");
    w->m_lag = sk_metric_gauge("seckill_queue_lag", "", "Reservations not yet acknowledged by the order writer");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(err, SK_ERRLEN, "order writer: cannot create its event loop");
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        snprintf(err, SK_ERRLEN, "order writer: cannot start its thread");
        uv_loop_close(&w->loop);
        goto fail;
    }
    pthread_mutex_lock(&w->mu);
    while (w->started == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->started < 0) {
        pthread_join(w->thread, NULL);
        snprintf(err, SK_ERRLEN, "order writer: %.200s", w->err);
        uv_loop_close(&w->loop);
        goto fail;
    }
    return w;
fail:
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return NULL;
}

void sk_writer_stop(struct sk_writer *w)
{
    if (w == NULL)
        return;
    uv_async_send(&w->stop);
    pthread_join(w->thread, NULL);
    if (uv_loop_close(&w->loop) != 0)
        sk_warn(WHO, "event loop closed with handles left open");
    free(w->items);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

int64_t sk_writer_lag(const struct sk_writer *w)
{
    return w ? atomic_load(&((struct sk_writer *)w)->lag) : -1;
}

int64_t sk_writer_written(const struct sk_writer *w)
{
    return w ? atomic_load(&((struct sk_writer *)w)->written) : 0;
}
