/*
 * An HTTP client on one libuv loop: libcurl's multi interface driven by the loop
 * (curl_multi_socket_action from uv_poll and uv_timer callbacks), so requests never
 * block the loop. One client per loop; everything here runs on that loop's thread.
 *
 * A request completes exactly once, from the loop (never inside kr_http_request):
 * with the HTTP status and body, or with status 0 and a sentence when no answer
 * came (refused, reset, timed out, the client closed). Every request has a total
 * time limit, so nothing waits longer than asked.
 *
 * Internal to the kafka_rest plugin (hidden symbols).
 */
#ifndef SK_KR_HTTP_H
#define SK_KR_HTTP_H

#include <stddef.h>

#include <uv.h>

struct kr_http;

/* One request. Everything is copied by kr_http_request. */
struct kr_http_req {
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
struct kr_http_resp {
    long status;      /* HTTP status, or 0 when no answer came */
    const char *body; /* NUL-terminated ("" when none) */
    size_t len;
    const char *err; /* status 0: why (a sentence); NULL otherwise */
};

typedef void (*kr_http_cb)(void *arg, const struct kr_http_resp *resp);

/* Make a client on `loop`. SK_ERR with a sentence in errbuf (SK_ERRLEN) on failure,
 * *out untouched. */
int kr_http_open(uv_loop_t *loop, struct kr_http **out, char *errbuf);

/* Start a request. SK_OK: cb runs exactly once, later, from the loop. SK_ERR (with
 * errbuf): cb never runs — out of memory, a bad option, or the client is closing. */
int kr_http_request(struct kr_http *h, const struct kr_http_req *req, kr_http_cb cb, void *arg, char *errbuf);

/* Requests in flight. */
size_t kr_http_pending(const struct kr_http *h);

/* Complete every request in flight now, with status 0 and "request cancelled";
 * their callbacks run before this returns. No request may be started meanwhile. */
void kr_http_abort_all(struct kr_http *h);

/* Abort everything (as above), then free curl and close the loop handles; when the
 * last handle is closed, on_closed(arg) runs from the loop and h is freed. h is
 * invalid after this call. Safe from inside a request's callback. */
void kr_http_close(struct kr_http *h, void (*on_closed)(void *arg), void *arg);

#endif
