/*
 * The console's only way to the daemon: admin API requests over libcurl's multi
 * interface, driven from the UI loop, so that the screen never waits on a socket.
 *
 * The loop calls sk_con_net_wait (which sleeps in curl_multi_poll until the
 * network, the keyboard fd or the timeout wakes it) and then sk_con_net_run, which
 * moves transfers forward and calls the callback of each finished one. One thread;
 * nothing here blocks for longer than the wait's timeout.
 *
 * Each request carries a small tag, copied in and handed back to the callback, so
 * the caller keeps no per-request memory to free (requests dropped at
 * sk_con_net_free simply never call back).
 */
#ifndef SK_CON_NET_H
#define SK_CON_NET_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* What the caller wants to remember about a request. */
struct sk_con_tag {
    int kind;       /* the caller's request kind */
    uint64_t id;    /* an activity or user id */
    char text[128]; /* an order number, a query: whatever the answer will need */
};

/* Called once per finished request, from sk_con_net_run. The answer and its body
 * are valid during the call only. */
typedef void (*sk_con_net_cb)(void *arg, const struct sk_con_tag *tag, const struct sk_con_answer *answer);

struct sk_con_net;

/* A client for base_url ("http://127.0.0.1:8081", no trailing path) sending
 * "Authorization: Bearer <token>". timeout_ms bounds a whole request (connect:
 * the smaller of it and 2 s). Every finished request calls cb(arg, …). Returns NULL
 * with the reason in err when libcurl cannot be set up. Free with sk_con_net_free. */
struct sk_con_net *sk_con_net_new(const char *base_url, const char *token, long timeout_ms, sk_con_net_cb cb, void *arg,
                                  char *err, size_t errlen);
/* Drop requests in flight (no callbacks) and free everything. NULL is fine. */
void sk_con_net_free(struct sk_con_net *net);

/* Start `method` on base_url + path (path starts with "/"), with a JSON body or
 * NULL. Returns SK_OK (the callback will run later, from sk_con_net_run) or SK_ERR
 * with the reason in err (no callback). */
int sk_con_net_start(struct sk_con_net *net, const char *method, const char *path, const char *body,
                     const struct sk_con_tag *tag, char *err, size_t errlen);

/* Sleep until a transfer needs attention, `fd` (the keyboard; -1 for none) is
 * readable, or timeout_ms passed. Returns 1 when fd is readable, else 0. */
int sk_con_net_wait(struct sk_con_net *net, int fd, int timeout_ms);
/* Move transfers on and call back for the finished ones. Never blocks. */
void sk_con_net_run(struct sk_con_net *net);
/* Requests started and not yet called back. */
size_t sk_con_net_in_flight(const struct sk_con_net *net);

/* Percent-encode s for a URL path segment or query value into buf. */
char *sk_con_net_escape(const char *s, char *buf, size_t len);

#endif
