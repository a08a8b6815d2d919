/*
 * An HTTP client on one libuv loop: libcurl's multi interface driven by the loop
 * (curl_multi_socket_action from uv_poll and uv_timer callbacks), so a request to
 * the gateway never blocks the loop. One client per loop; everything here runs on
 * that loop's thread.
 *
 * A request completes exactly once, from the loop (never inside al_http_post):
 * with the HTTP status and body, or with status 0 and a sentence when no answer
 * came (refused, reset, timed out, cancelled). Every request has a total time
 * limit, connect included, so nothing waits longer than asked.
 *
 * Internal to the alipay plugin (hidden symbols).
 */
#ifndef SK_ALIPAY_HTTP_H
#define SK_ALIPAY_HTTP_H

#include <stddef.h>

#include <uv.h>

struct al_http;

/* The outcome of a request. Valid only during the callback. */
struct al_http_resp {
    long status;      /* HTTP status, or 0 when no answer came */
    const char *body; /* NUL-terminated, "" when none */
    size_t len;
    const char *err; /* status 0: why, a sentence; NULL otherwise */
};

typedef void (*al_http_cb)(void *arg, const struct al_http_resp *resp);

/* Make a client on `loop`. SK_ERR with a sentence in errbuf (SK_ERRLEN), *out
 * untouched, on failure. */
int al_http_open(uv_loop_t *loop, struct al_http **out, char *errbuf);

/*
 * POST `body` (body_len bytes, copied) to `url` with the given Content-Type,
 * allowing timeout_ms (>= 1) in all and an answer of at most max_answer bytes.
 * SK_OK: cb(arg, …) runs exactly once, later, from the loop. SK_ERR with errbuf:
 * cb never runs (out of memory, or the client is closing).
 */
int al_http_post(struct al_http *h, const char *url, const char *content_type, const char *body, size_t body_len,
                 unsigned timeout_ms, size_t max_answer, al_http_cb cb, void *arg, char *errbuf);

/* Complete every request in flight (status 0, "request cancelled"), then free
 * curl and close the loop handles; once the last handle is closed, on_closed(arg)
 * runs from the loop and h is freed. h is invalid after this call. Safe from
 * inside a request's callback. */
void al_http_close(struct al_http *h, void (*on_closed)(void *arg), void *arg);

#endif
