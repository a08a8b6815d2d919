/*
 * The client API (/api/v1/…) for buyers, served by the worker threads. Nothing
 * here blocks: reads come from the in-memory catalog, reservations go to the stock
 * plugin on the worker's own loop.
 */
#ifndef SK_CLIENT_API_H
#define SK_CLIENT_API_H

#include <stddef.h>

#include "core/http/server.h"

struct sk_daemon;

/* The client listener's routes (health routes included). */
extern const struct sk_http_route sk_client_routes[];
extern const size_t sk_client_routes_count;

/* Register the client API's metrics (main thread, before the workers run). */
void sk_client_api_init(struct sk_daemon *d);

/* Units reserved through this daemon since it started (for rates). */
int64_t sk_client_reserved_total(void);

/* Authorization hook: "Authorization: Bearer <JWT HS256>"; sets the user id, or
 * answers 401 unauthorized itself. */
int sk_client_authorize(struct sk_http_req *req);

/* Handlers (catalog_views.c, reserve.c, orders.c). */
void sk_client_list_activities(struct sk_http_req *req);
void sk_client_get_activity(struct sk_http_req *req);
void sk_client_get_item(struct sk_http_req *req);
void sk_client_reserve(struct sk_http_req *req);
void sk_client_get_order(struct sk_http_req *req);
void sk_client_confirm(struct sk_http_req *req);   /* confirm.c */
void sk_client_notify(struct sk_http_req *req);    /* notify.c */

#endif
