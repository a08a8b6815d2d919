/* GET /healthz (liveness), /readyz (stores and plugins reachable), /metrics. */
#ifndef SK_HEALTH_H
#define SK_HEALTH_H

#include "http/server.h"

void sk_health_healthz(struct sk_http_req *req);
void sk_health_readyz(struct sk_http_req *req);
void sk_health_metrics(struct sk_http_req *req);

/* The three routes, to be listed first in a listener's route table. */
#define SK_HEALTH_ROUTES                                                                                           \
    {"GET", "/healthz", sk_health_healthz, 1}, {"GET", "/readyz", sk_health_readyz, 1},                          \
        {"GET", "/metrics", sk_health_metrics, 1}

#endif
