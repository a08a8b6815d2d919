/* Routes and buyer authentication of the client API. */
#include "client_api.h"

#include <string.h>

#include "core/auth/jwt.h"
#include "core/daemon.h"
#include "core/health.h"
#include "core/timeutil.h"

int sk_client_authorize(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const char *auth = sk_http_header(req, "authorization");
    char why[128];
    uint64_t user_id = 0;
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
        sk_http_error(req, 401, "unauthorized", "missing \"Authorization: Bearer <token>\"");
        return SK_ERR;
    }
    auth += 7;
    if (sk_jwt_verifier_check(lc->jwt, auth, strlen(auth), sk_now_ms() / 1000, &user_id, why, sizeof(why)) != SK_OK) {
        sk_http_error(req, 401, "unauthorized", "%s", why);
        return SK_ERR;
    }
    sk_http_set_user(req, user_id);
    return SK_OK;
}

const struct sk_http_route sk_client_routes[] = {
    SK_HEALTH_ROUTES,
    {"GET", "/api/v1/activities", sk_client_list_activities, 1},
    {"GET", "/api/v1/activities/{id}", sk_client_get_activity, 1},
    {"GET", "/api/v1/items/{id}", sk_client_get_item, 1},
    /* public: the handler checks the token itself, after the cheap refusals */
    {"POST", "/api/v1/seckill", sk_client_reserve, 1},
    {"GET", "/api/v1/orders/{s}", sk_client_get_order, 0},
    {"POST", "/api/v1/orders/{s}/confirm", sk_client_confirm, 0},
    /* public: the gateway signs its notifies; the plugin verifies them */
    {"POST", "/api/v1/pay/notify/{s}", sk_client_notify, 1},
};
const size_t sk_client_routes_count = sizeof(sk_client_routes) / sizeof(sk_client_routes[0]);
