/* Liveness, readiness and metrics. Readiness looks at this loop's stock connection
 * and at the scheduler's last MariaDB check, so it never blocks the loop. */
#include "health.h"

#include <stdlib.h>

#include "daemon.h"
#include "metrics.h"
#include "timeutil.h"

void sk_health_healthz(struct sk_http_req *req)
{
    sk_http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void sk_health_readyz(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    int stock_ok = lc->stock_conn != NULL && lc->d->stock_ops->ready(lc->stock_conn);
    int db_ok = atomic_load(&lc->d->db_ok);
    int ready = stock_ok && db_ok;
    sk_http_respond_json(req, ready ? 200 : 503,
                         json_pack("{s:b, s:{s:b, s:b}}", "ready", ready, "checks", "stock", stock_ok, "mariadb",
                                   db_ok));
}

void sk_health_metrics(struct sk_http_req *req)
{
    size_t len = 0;
    char *text = sk_metrics_render(&len);
    if (text == NULL) {
        sk_http_error(req, 500, "internal", "cannot render metrics");
        return;
    }
    sk_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
