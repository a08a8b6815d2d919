/*
 * The admin API (/admin/v1/…) for operators: activities and items, publishing,
 * cancelling and live stock. Served by the admin listener's single thread, which
 * may block on MariaDB (never a buyer's loop). Bearer token from the config.
 */
#ifndef SK_ADMIN_API_H
#define SK_ADMIN_API_H

#include <stddef.h>

#include "core/http/server.h"

/* The admin listener's routes (health routes included). */
extern const struct sk_http_route sk_admin_routes[];
extern const size_t sk_admin_routes_count;

/* Authorization hook: "Authorization: Bearer <admin_token>", compared in constant
 * time; answers 401 unauthorized itself otherwise. */
int sk_admin_authorize(struct sk_http_req *req);

/* GET /admin/v1/stats (stats_api.c). */
void sk_admin_stats(struct sk_http_req *req);
/* GET /admin/v1/orders, POST /admin/v1/orders/{order_no}/close (orders_api.c). */
void sk_admin_list_orders(struct sk_http_req *req);
void sk_admin_close_order(struct sk_http_req *req);

#endif
