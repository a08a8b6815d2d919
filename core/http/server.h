/*
 * The HTTP/1.1 server: h2o (libuv flavour) on N event-loop threads, a small router,
 * JSON responses and errors, body and header limits, idle timeouts, keep-alive,
 * per-route metrics and a graceful stop.
 *
 * Each thread has its own uv loop, h2o context and listening socket (SO_REUSEPORT),
 * so connections spread over the threads without a shared lock.
 */
#ifndef SK_HTTP_SERVER_H
#define SK_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <seckill/plugin.h>

/* One request in flight. Created by the server before the handler runs; freed by
 * the server once a response was sent with one of the sk_http_respond* calls.
 * Every request gets exactly one response, possibly later (from a callback on the
 * same loop). If the client goes away first, the response is dropped quietly. */
struct sk_http_req;

typedef void (*sk_http_handler)(struct sk_http_req *req);

struct sk_http_route {
    const char *method;   /* "GET", "POST", "PUT", "DELETE" */
    /* Path pattern; "{id}" matches a decimal integer segment (1..2^63-1), "{s}" any
     * non-empty segment. e.g. "/admin/v1/activities/{id}/publish". Also the route's
     * label in metrics. */
    const char *pattern;
    sk_http_handler handler;
    int public_route;     /* 1: no Authorization needed (health, metrics, notify) */
};

struct sk_http_server_conf {
    const char *name;            /* "client" or "admin": log prefix and metrics label */
    const char *host;
    uint16_t port;
    unsigned threads;            /* event-loop threads, >= 1 */
    const struct sk_http_route *routes;
    size_t n_routes;
    size_t max_body_bytes;       /* larger bodies: 413 payload_too_large */
    unsigned idle_timeout_ms;    /* idle keep-alive and slow clients are dropped */
    unsigned max_connections;    /* per thread; beyond it new connections wait in the backlog */

    /* Bearer token check run before every non-public route; NULL = none. Returns SK_OK
     * to let the request through (it may store what it learned with
     * sk_http_set_user), or SK_ERR after it has responded (401/403) itself. */
    int (*authorize)(struct sk_http_req *req);

    void *app;                   /* the application's; see sk_http_app */
    /* Called on each loop's thread before it serves; *loop_data is what
     * sk_http_loop_data returns on that loop. SK_ERR (with err, SK_ERRLEN) aborts
     * the start. */
    int (*loop_init)(void *app, unsigned index, uv_loop_t *loop, void **loop_data, char *err);
    /* Called on the loop's thread when it stops, after the last request finished;
     * the loop keeps running until the handles it closes are closed. */
    void (*loop_fini)(void *app, unsigned index, uv_loop_t *loop, void *loop_data);
};

struct sk_http_server;

/* Bind the listeners and start the threads; returns once every loop has run
 * loop_init and listens. NULL with a sentence in err (SK_ERRLEN) on failure (port in
 * use, loop_init failed…), with nothing left running. Copies conf (not the routes
 * array, which must outlive the server). */
struct sk_http_server *sk_http_server_start(const struct sk_http_server_conf *conf, char *err);
/* Graceful stop: stop accepting, let requests in flight finish (up to
 * grace_ms), close idle connections, run loop_fini, join the threads, free. */
void sk_http_server_stop(struct sk_http_server *srv, unsigned grace_ms);

/* --- inside a handler, on the request's loop thread ---------------------------- */

void *sk_http_app(const struct sk_http_req *req);
void *sk_http_loop_data(const struct sk_http_req *req);
uv_loop_t *sk_http_loop(const struct sk_http_req *req);
/* The n-th "{id}" of the pattern (0-based). */
uint64_t sk_http_param_id(const struct sk_http_req *req, unsigned n);
/* The n-th "{s}" of the pattern, NUL-terminated; valid until the response. */
const char *sk_http_param_str(const struct sk_http_req *req, unsigned n);
/* The request body (may be empty, never NULL) and its length; valid until the response. */
const char *sk_http_body(const struct sk_http_req *req, size_t *len);
/* A header's value (NUL-terminated copy, valid until the response) or NULL. */
const char *sk_http_header(const struct sk_http_req *req, const char *name);
/* The query string after '?' (without it), or "" — NUL-terminated. */
const char *sk_http_query(const struct sk_http_req *req);
/* The peer's IP address as text. */
const char *sk_http_peer(const struct sk_http_req *req);
/* The authenticated user id set by the authorize hook (0 if none). */
void sk_http_set_user(struct sk_http_req *req, uint64_t user_id);
uint64_t sk_http_user(const struct sk_http_req *req);

/* Parse the body as a JSON object. On failure responds 400 bad_request (or 413)
 * itself and returns NULL; otherwise the caller owns the reference. An empty body
 * gives NULL without responding when allow_empty is 1 (then *empty is set). */
json_t *sk_http_json_body(struct sk_http_req *req, int allow_empty, int *empty);

/* --- responses (exactly one per request; they free the request) ----------------- */

/* Send `body` (copied) with the given status and content type. */
void sk_http_respond(struct sk_http_req *req, int status, const char *content_type, const char *body, size_t len);
/* Send a JSON document; steals the reference to `doc`. */
void sk_http_respond_json(struct sk_http_req *req, int status, json_t *doc);
/* Send {"error":{"code":code,"message":…}} with status; for 429 a Retry-After
 * header of retry_after seconds is added by sk_http_error_retry. */
void sk_http_error(struct sk_http_req *req, int status, const char *code, const char *fmt, ...) SK_PRINTF(4, 5);
void sk_http_error_retry(struct sk_http_req *req, unsigned retry_after, const char *fmt, ...) SK_PRINTF(3, 4);

#endif
