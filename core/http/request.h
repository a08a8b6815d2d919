/*
 * struct sk_http_req and the per-loop bookkeeping that request.c shares with
 * server.c. Internal to core/http.
 *
 * Lifetimes. An sk_http_req is malloc'd by the server when h2o hands it a request
 * and freed exactly once, by the sk_http_respond* call that answers it (or by the
 * server when its loop ends and a handler never answered). The h2o request it wraps
 * lives in h2o's connection and its memory pool; h2o may drop it before we answer
 * (the client went away, or the server answered 503 itself while stopping). Then
 * `h2o` becomes NULL and the later sk_http_respond* only frees our struct. That is
 * detected with a small shared object in the request's pool (`token`), whose dispose
 * callback h2o runs when it clears the pool.
 */
#ifndef SK_HTTP_REQUEST_H
#define SK_HTTP_REQUEST_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "core/http/router.h"
#include "core/http/server.h"

/* Longest piece of request text (a path) echoed back in an error message. */
#define SK_HTTP_ECHO_MAX 200

/* Per-loop state shared by the requests of one loop. Owned by the server's worker;
 * only touched on that loop's thread. */
struct sk_http_reqset {
    const char *listener;                /* metrics label (server-owned) */
    const char *who;                     /* log prefix (server-owned) */
    const struct sk_http_route *routes;  /* the application's table */
    void *app;
    void *loop_data;
    uv_loop_t *loop;
    size_t max_body_bytes;
    int draining;             /* responses close their connection (the server is stopping) */
    size_t n_live;            /* sk_http_req not yet freed */
    size_t n_pending;         /* of those, still waiting for an answer to h2o */
    struct sk_http_req *live; /* every live sk_http_req, for the stop */
    /* The request whose hook or handler runs right now; cleared when that request is
     * freed, which tells the dispatcher that it was answered synchronously. */
    struct sk_http_req *dispatching;
};

/* Lives in the h2o request's pool; `req` is NULL once we answered. */
struct sk_http_req_token {
    struct sk_http_req *req;
};

/* A copy of a request header value, kept until the request is freed. */
struct sk_http_hdr_copy {
    struct sk_http_hdr_copy *next;
    char value[];
};

struct sk_http_req {
    struct sk_http_reqset *set;
    h2o_req_t *h2o;                   /* NULL once answered or dropped by h2o */
    struct sk_http_req_token *token;  /* in h2o's pool; NULL with h2o */
    const struct sk_http_route *route;/* NULL: no route matched */
    unsigned n_ids, n_strs;
    uint64_t ids[SK_HTTP_MAX_PARAMS];
    const char *strs[SK_HTTP_MAX_PARAMS]; /* NUL-terminated, inside `copies` */
    const char *query;                /* NUL-terminated, inside `copies` */
    char *copies;                     /* one malloc'd block for strs and query */
    char allow[96];                   /* Allow header of a 405, or "" */
    char peer[NI_MAXHOST];
    uint64_t user;
    uint64_t start_ns;                /* uv_hrtime() when the request reached us */
    struct sk_http_hdr_copy *hdrs;
    struct sk_http_req *prev, *next;  /* in set->live */
};

/* Wrap an h2o request that the router matched (m->result OK) or not (route NULL).
 * Aborts on out-of-memory, like h2o itself. The result is owned by the server until
 * it reaches a handler, then by whoever answers it. */
struct sk_http_req *sk_http_req_new(struct sk_http_reqset *set, h2o_req_t *h2o, const struct sk_http_match *m);

/* Answer the h2o side now with an error (used by the stop for requests that outlive
 * the grace period) but keep our struct for the handler, whose later answer then only
 * frees it. No-op when the h2o side is already gone. */
void sk_http_req_abort(struct sk_http_req *req, int status, const char *code, const char *message);

/* Free every request still live (the loop is gone; their handlers will never answer).
 * Returns how many there were. */
size_t sk_http_reqset_free_all(struct sk_http_reqset *set);

#endif
