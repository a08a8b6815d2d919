/* GET /admin/v1/stats — daemon figures for the console and for operators. */
#include "admin_api.h"
#include "core/catalog.h"
#include "core/daemon.h"
#include "core/db/order_stats.h"
#include "core/orders/writer.h"
#include "core/stats.h"
#include "core/timeutil.h"

void sk_admin_stats(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    struct sk_daemon *d = lc->d;
    struct sk_stats_figures fig;
    int64_t counts[SK_ORDER_STATUSES];
    char err[SK_ERRLEN];
    int db_ok = sk_db_ping(&lc->db, err, sizeof(err)) == SK_OK &&
                sk_store_orders_by_status(&lc->db, counts, err, sizeof(err)) == SK_OK;

    sk_stats_read(&d->stats, &fig);
    json_t *by_status = json_object();
    for (size_t i = 0; db_ok && i < SK_ORDER_STATUSES; i++)
        json_object_set_new(by_status, sk_order_status_names[i], json_integer(counts[i]));

    /* Units taken in the stock store, from the catalog's live levels. */
    const struct sk_catalog_snapshot *snap = sk_catalog_current(d->catalog);
    int64_t units_reserved = 0;
    for (size_t i = 0; i < snap->n_items; i++)
        units_reserved += atomic_load(&snap->items_by_id[i]->initial) - atomic_load(&snap->items_by_id[i]->remaining);

    /* null while no queue plugin runs, or before the writer first measured it */
    int64_t lag = sk_writer_lag(d->writer);
    json_t *doc = json_pack(
        "{s:I, s:f, s:f, s:f, s:f, s:I, s:o, s:I, s:o, s:{s:{s:s, s:s, s:b}}, s:b}", "uptime_s",
        (json_int_t)((sk_now_ms() - atomic_load(&d->started_at_ms)) / 1000), "requests_per_s", fig.requests_per_s,
        "reservations_per_s", fig.reservations_per_s, "latency_p50_ms", (double)fig.p50_us / 1000.0,
        "latency_p99_ms", (double)fig.p99_us / 1000.0, "window_ms", (json_int_t)fig.window_ms, "orders_by_status",
        by_status, "units_reserved", (json_int_t)units_reserved, "queue_lag",
        lag >= 0 ? json_integer(lag) : json_null(), "plugins", "stock", "name",
        d->stock.desc->name, "version", d->stock.desc->version, "ready", d->stock_ops->ready(lc->stock_conn),
        "mariadb", db_ok);
    sk_http_respond_json(req, 200, doc);
}
