/*
 * An HTTP client on one libuv loop: libcurl's multi interface driven by the loop
 * (curl_multi_socket_action from uv_poll and uv_timer callbacks), so requests never
 * block the loop. One client per loop; everything here runs on that loop's thread.
 *
 * A request completes exactly once, from the loop (never inside sk_chttp_request):
 * with the HTTP status and body, or with status 0 and a sentence when no answer
 * came (refused, reset, timed out, the client closed). Every request has a total
 * time limit, so nothing waits longer than asked.
 *
 * Internal to the plugins that speak HTTP (kafka_rest, alipay): hidden symbols in
 * plugins/common/libskhttp.la.
 */
#ifndef SK_HTTP_LOOP_H
#define SK_HTTP_LOOP_H

#include <stddef.h>

#include <uv.h>

struct sk_chttp;

/* One request. Everything is copied by sk_chttp_request. */
struct sk_chttp_req {
    const char *method;       /* "GET", "POST", "DELETE" (a GET may carry a body) */
    const char *url;          /* absolute http:// or https:// URL */
    const char *content_type; /* NULL: none (and no body expected) */
    const char *accept;       /* NULL: none */
    const char *body;         /* NULL: no body */
    size_t body_len;
    unsigned timeout_ms; /* total time allowed, connect included (>= 1) */
    size_t max_answer;   /* a longer body fails the request */
};

/* The outcome. Valid only during the callback. */
struct sk_chttp_resp {
    long status;      /* HTTP status, or 0 when no answer came */
    const char *body; /* NUL-terminated ("" when none) */
    size_t len;
    const char *err; /* status 0: why (a sentence); NULL otherwise */
};

typedef void (*sk_chttp_cb)(void *arg, const struct sk_chttp_resp *resp);

/* Make a client on `loop`. SK_ERR with a sentence in errbuf (SK_ERRLEN) on failure,
 * *out untouched. */
int sk_chttp_open(uv_loop_t *loop, struct sk_chttp **out, char *errbuf);

/* Start a request. SK_OK: cb runs exactly once, later, from the loop. SK_ERR (with
 * errbuf): cb never runs — out of memory, a bad option, or the client is closing. */
int sk_chttp_request(struct sk_chttp *h, const struct sk_chttp_req *req, sk_chttp_cb cb, void *arg, char *errbuf);

/* Requests in flight. */
size_t sk_chttp_pending(const struct sk_chttp *h);

/* Complete every request in flight now, with status 0 and "request cancelled";
 * their callbacks run before this returns. No request may be started meanwhile. */
void sk_chttp_abort_all(struct sk_chttp *h);

/* Abort everything (as above), then free curl and close the loop handles; when the
 * last handle is closed, on_closed(arg) runs from the loop and h is freed. h is
 * invalid after this call. Safe from inside a request's callback. */
void sk_chttp_close(struct sk_chttp *h, void (*on_closed)(void *arg), void *arg);

#endif
