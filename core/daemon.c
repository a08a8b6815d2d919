/* Start-up and shutdown of seckilld; see daemon.h. */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_api.h"
#include "auth/jwt.h"
#include "catalog.h"
#include "client/client_api.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "orders/closer.h"
#include "orders/writer.h"
#include "scheduler.h"
#include "timeutil.h"

#define WHO "daemon"
#define GRACE_MS 5000

int sk_loop_ctx_init(struct sk_daemon *d, unsigned index, uv_loop_t *loop, int with_db, struct sk_loop_ctx **out,
                     char *err)
{
    struct sk_loop_ctx *lc = calloc(1, sizeof(*lc));
    char dberr[SK_ERRLEN];
    if (lc == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return SK_ERR;
    }
    lc->d = d;
    lc->index = index;
    if (sk_jwt_verifier_new(d->cfg.jwt_secret, strlen(d->cfg.jwt_secret), &lc->jwt, err, SK_ERRLEN) != SK_OK)
        goto fail;
    if (d->stock_ops->attach(d->stock.instance, loop, &lc->stock_conn, err) != SK_OK)
        goto fail;
    if (d->pay_ops != NULL && d->pay_ops->attach(d->payment.instance, loop, &lc->pay_conn, err) != SK_OK) {
        d->stock_ops->detach(lc->stock_conn);
        goto fail;
    }
    if (with_db) {
        if (sk_db_open_config(&lc->db, &d->cfg, dberr, sizeof(dberr)) != SK_OK) {
            snprintf(err, SK_ERRLEN, "%s", dberr);
            if (lc->pay_conn)
                d->pay_ops->detach(lc->pay_conn);
            d->stock_ops->detach(lc->stock_conn);
            goto fail;
        }
        lc->has_db = 1;
    }
    *out = lc;
    return SK_OK;
fail:
    sk_jwt_verifier_free(lc->jwt);
    free(lc);
    return SK_ERR;
}

void sk_loop_ctx_fini(struct sk_loop_ctx *lc)
{
    if (lc == NULL)
        return;
    if (lc->has_db)
        sk_db_close(&lc->db);
    if (lc->pay_conn)
        lc->d->pay_ops->detach(lc->pay_conn);
    if (lc->stock_conn)
        lc->d->stock_ops->detach(lc->stock_conn);
    sk_jwt_verifier_free(lc->jwt);
    free(lc);
}

static int client_loop_init(void *app, unsigned index, uv_loop_t *loop, void **loop_data, char *err)
{
    return sk_loop_ctx_init(app, index, loop, 0, (struct sk_loop_ctx **)loop_data, err);
}

static int admin_loop_init(void *app, unsigned index, uv_loop_t *loop, void **loop_data, char *err)
{
    return sk_loop_ctx_init(app, index, loop, 1, (struct sk_loop_ctx **)loop_data, err);
}

static void loop_fini(void *app, unsigned index, uv_loop_t *loop, void *loop_data)
{
    (void)app, (void)index, (void)loop;
    sk_loop_ctx_fini(loop_data);
}

/* Apply pending migrations on a connection of its own, before any thread runs. */
static int migrate(struct sk_daemon *d, char *err)
{
    struct sk_db db;
    char dberr[SK_ERRLEN];
    int applied = 0, rc = SK_ERR;
    if (sk_db_open_config(&db, &d->cfg, dberr, sizeof(dberr)) != SK_OK) {
        snprintf(err, SK_ERRLEN, "%s", dberr);
        return SK_ERR;
    }
    if (sk_db_migrate(&db, &applied, dberr, sizeof(dberr)) != SK_OK) {
        snprintf(err, SK_ERRLEN, "migrations: %.230s", dberr);
        goto out;
    }
    sk_info(WHO, "MariaDB schema up to date (%d migration%s applied now)", applied, applied == 1 ? "" : "s");
    rc = SK_OK;
out:
    sk_db_close(&db);
    return rc;
}

static struct sk_http_server *start_listener(struct sk_daemon *d, const char *name, const struct sk_listen *l,
                                             unsigned threads, const struct sk_http_route *routes, size_t n,
                                             int (*authorize)(struct sk_http_req *),
                                             int (*init)(void *, unsigned, uv_loop_t *, void **, char *), char *err)
{
    struct sk_http_server_conf conf = {
        .name = name,
        .host = l->host,
        .port = l->port,
        .threads = threads,
        .routes = routes,
        .n_routes = n,
        .max_body_bytes = d->cfg.max_body_bytes,
        .idle_timeout_ms = d->cfg.idle_timeout_ms,
        .max_connections = d->cfg.max_connections,
        .authorize = authorize,
        .app = d,
        .loop_init = init,
        .loop_fini = loop_fini,
    };
    struct sk_http_server *srv = sk_http_server_start(&conf, err);
    if (srv != NULL)
        sk_info(WHO, "%s API on %s:%u (%u thread%s)", name, l->host, l->port, threads, threads == 1 ? "" : "s");
    return srv;
}

int sk_daemon_start(struct sk_daemon *d, char *err)
{
    char perr[SK_ERRLEN];
    atomic_store(&d->started_at_ms, sk_now_ms());
    sk_stats_init(&d->stats);
    if (sk_metrics_init() != SK_OK) {
        snprintf(err, SK_ERRLEN, "cannot set up metrics");
        return SK_ERR;
    }
    if (sk_plugin_load(&d->cfg, &d->cfg.stock, SK_PLUGIN_STOCK, &d->stock, perr) != SK_OK) {
        snprintf(err, SK_ERRLEN, "%s", perr);
        return SK_ERR;
    }
    d->stock_ops = sk_plugin_stock_ops(&d->stock);
    sk_info(WHO, "stock plugin %s %s loaded from %s", d->stock.desc->name, d->stock.desc->version, d->stock.path);
    if (d->cfg.queue.present) {
        if (sk_plugin_load(&d->cfg, &d->cfg.queue, SK_PLUGIN_QUEUE, &d->queue, perr) != SK_OK) {
            snprintf(err, SK_ERRLEN, "%s", perr);
            return SK_ERR;
        }
        sk_info(WHO, "queue plugin %s %s loaded from %s", d->queue.desc->name, d->queue.desc->version,
                d->queue.path);
    } else {
        sk_warn(WHO, "no queue plugin configured (plugins.queue): reservations stay in the stock store and "
                     "never become MariaDB orders");
    }
    if (d->cfg.payment.present) {
        if (sk_plugin_load(&d->cfg, &d->cfg.payment, SK_PLUGIN_PAYMENT, &d->payment, perr) != SK_OK) {
            snprintf(err, SK_ERRLEN, "%s", perr);
            return SK_ERR;
        }
        d->pay_ops = sk_plugin_payment_ops(&d->payment);
        sk_info(WHO, "payment plugin %s %s loaded from %s", d->payment.desc->name, d->payment.desc->version,
                d->payment.path);
    }
    if (migrate(d, err) != SK_OK)
        return SK_ERR;
    if (sk_db_pool_init(&d->pool, &d->cfg, d->cfg.mariadb.pool_size) != SK_OK) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return SK_ERR;
    }
    if (d->queue.desc != NULL && (d->writer = sk_writer_start(d, err)) == NULL)
        return SK_ERR;
    if ((d->closer = sk_closer_start(d, err)) == NULL)
        return SK_ERR;
    atomic_store(&d->db_ok, 1);
    if ((d->catalog = sk_catalog_new()) == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return SK_ERR;
    }
    sk_client_api_init(d);
    if ((d->sched = sk_sched_start(d, err)) == NULL)
        return SK_ERR;
    d->admin = start_listener(d, "admin", &d->cfg.admin, 1, sk_admin_routes, sk_admin_routes_count,
                              sk_admin_authorize, admin_loop_init, err);
    if (d->admin == NULL)
        return SK_ERR;
    d->client = start_listener(d, "client", &d->cfg.client, d->cfg.workers, sk_client_routes,
                               sk_client_routes_count, sk_client_authorize, client_loop_init, err);
    if (d->client == NULL)
        return SK_ERR;
    return SK_OK;
}

void sk_daemon_stop(struct sk_daemon *d)
{
    /* Buyers first, so no new work arrives while the rest winds down. */
    if (d->client)
        sk_http_server_stop(d->client, GRACE_MS);
    d->client = NULL;
    if (d->admin)
        sk_http_server_stop(d->admin, GRACE_MS);
    d->admin = NULL;
    sk_sched_stop(d->sched);
    d->sched = NULL;
    /* After the buyers: every reservation answered so far is in the logs, and what
     * the writer has not acknowledged is delivered again after a restart. */
    sk_writer_stop(d->writer);
    d->writer = NULL;
    sk_closer_stop(d->closer);
    d->closer = NULL;
    sk_plugin_unload(&d->queue);
    sk_plugin_unload(&d->payment);
    d->pay_ops = NULL;
    sk_db_pool_free(&d->pool);
    sk_catalog_free(d->catalog);
    d->catalog = NULL;
    sk_plugin_unload(&d->stock);
    d->stock_ops = NULL;
    sk_config_free(&d->cfg);
    sk_stats_destroy(&d->stats);
    sk_metrics_free();
}
