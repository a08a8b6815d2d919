/*
 * libcurl multi on a libuv loop, after curl's docs/examples/multi-uv.c: curl tells
 * us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); uv_poll and uv_timer do the watching, and their
 * callbacks hand the events to curl_multi_socket_action. Finished transfers are
 * collected with curl_multi_info_read after every such call. curl is never called
 * from inside its own callbacks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <seckill/plugin.h>

#include "http_loop.h"
#include "say.h"

/* A socket curl asked us to watch. Freed in the poll handle's close callback. */
struct sock {
    uv_poll_t poll;
    struct sk_chttp *h;
    struct sock *prev, *next;
};

struct req {
    struct sk_chttp *h;
    struct req *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    char *answer; /* grows as the body comes */
    size_t len, cap, max;
    int too_long;
    sk_chttp_cb cb;
    void *arg;
    unsigned timeout_ms;
    char curl_err[CURL_ERROR_SIZE];
};

struct sk_chttp {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct req *reqs; /* in flight */
    size_t n_reqs;
    struct sock *socks; /* watched */
    int depth;          /* nesting of completion dispatch */
    int aborting;
    int closing;
    int handles; /* loop handles not yet closed */
    void (*on_closed)(void *arg);
    void *closed_arg;
};

static void handle_closed(struct sk_chttp *h)
{
    if (--h->handles == 0) {
        void (*cb)(void *) = h->on_closed;
        void *arg = h->closed_arg;
        free(h);
        if (cb != NULL)
            cb(arg);
    }
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct sock *k = handle->data;
    struct sk_chttp *h = k->h;
    free(k);
    handle_closed(h);
}

static void on_timer_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void sock_drop(struct sock *k)
{
    struct sk_chttp *h = k->h;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        h->socks = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static void req_free(struct req *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->answer);
    free(r);
}

/* Unlink a request, take it out of curl and run its callback with `resp`. */
static void req_finish(struct req *r, struct sk_chttp_resp *resp)
{
    struct sk_chttp *h = r->h;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    h->n_reqs--;
    curl_multi_remove_handle(h->multi, r->easy);
    r->cb(r->arg, resp);
    req_free(r);
}

static void req_done(struct req *r, CURLcode rc)
{
    char err[SK_ERRLEN];
    struct sk_chttp_resp resp = {.status = 0, .body = "", .len = 0, .err = NULL};

    if (rc == CURLE_OK && r->too_long) {
        say(err, "the answer is longer than %zu bytes", r->max);
        resp.err = err;
    } else if (rc == CURLE_WRITE_ERROR && r->too_long) {
        say(err, "the answer is longer than %zu bytes", r->max);
        resp.err = err;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        say(err, "no answer within %u ms", r->timeout_ms);
        resp.err = err;
    } else if (rc != CURLE_OK) {
        say(err, "%s", r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc));
        resp.err = err;
    } else {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        resp.body = r->answer != NULL ? r->answer : "";
        resp.len = r->len;
        if (resp.status <= 0) {
            say(err, "no HTTP status in the answer");
            resp.status = 0;
            resp.err = err;
        }
    }
    req_finish(r, &resp);
}

static void cleanup(struct sk_chttp *h)
{
    curl_multi_cleanup(h->multi); /* may still report sockets to remove */
    h->multi = NULL;
    while (h->socks != NULL)
        sock_drop(h->socks);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

/* Run the callbacks of finished transfers. */
static void dispatch(struct sk_chttp *h)
{
    CURLMsg *msg;
    int left;

    h->depth++;
    while (h->multi != NULL && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            struct req *r = NULL;
            CURLcode rc = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            req_done(r, rc);
        }
    }
    h->depth--;
    if (h->closing && h->depth == 0 && h->multi != NULL)
        cleanup(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *k = p->data;
    struct sk_chttp *h = k->h;
    int flags = 0, running;
    uv_os_fd_t fd;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    if (h->multi != NULL && uv_fileno((uv_handle_t *)p, &fd) == 0) {
        curl_multi_socket_action(h->multi, (curl_socket_t)fd, flags, &running);
        dispatch(h);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct sk_chttp *h = t->data;
    int running;
    if (h->multi != NULL) {
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        dispatch(h);
    }
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget a socket. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct sk_chttp *h = userp;
    struct sock *k = socketp;
    int events = 0;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (k != NULL) {
            sock_drop(k);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (k == NULL) {
        k = calloc(1, sizeof(*k));
        if (k == NULL)
            return -1;
        if (uv_poll_init_socket(h->loop, &k->poll, s) != 0) {
            free(k);
            return -1;
        }
        k->h = h;
        k->poll.data = k;
        h->handles++;
        k->next = h->socks;
        if (h->socks != NULL)
            h->socks->prev = k;
        h->socks = k;
        curl_multi_assign(h->multi, s, k);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&k->poll, events, on_poll) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: when to call curl back (-1: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct sk_chttp *h = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct req *r = userp;
    size_t n = size * nmemb;

    if (r->len + n > r->max) {
        r->too_long = 1;
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->answer, cap);
        if (p == NULL)
            return 0;
        r->answer = p;
        r->cap = cap;
    }
    memcpy(r->answer + r->len, data, n);
    r->len += n;
    r->answer[r->len] = '\0';
    return n;
}

int sk_chttp_open(uv_loop_t *loop, struct sk_chttp **out, char *errbuf)
{
    struct sk_chttp *h = calloc(1, sizeof(*h));
    int rc = SK_ERR;

    if (h == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    h->loop = loop;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        say(errbuf, "curl_multi_init failed");
        goto out;
    }
    if (uv_timer_init(loop, &h->timer) != 0) {
        say(errbuf, "cannot make a timer on the loop");
        goto out;
    }
    h->timer.data = h;
    h->handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    h = NULL;
    rc = SK_OK;
out:
    if (h != NULL) {
        if (h->multi != NULL)
            curl_multi_cleanup(h->multi);
        free(h);
    }
    return rc;
}

int sk_chttp_request(struct sk_chttp *h, const struct sk_chttp_req *in, sk_chttp_cb cb, void *arg, char *errbuf)
{
    struct req *r = NULL;
    char line[256];
    int rc = SK_ERR;
    CURLcode e = CURLE_OK;

    if (h->closing || h->aborting) {
        say(errbuf, "the connection is closing");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->easy = curl_easy_init()) == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    r->max = in->max_answer;
    r->timeout_ms = in->timeout_ms;
    if (in->content_type != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", in->content_type);
        struct curl_slist *l = curl_slist_append(r->headers, line);
        if (l == NULL)
            goto nomem;
        r->headers = l;
    }
    snprintf(line, sizeof(line), "Accept: %s", in->accept != NULL ? in->accept : "");
    struct curl_slist *l = curl_slist_append(r->headers, in->accept != NULL ? line : "Accept:");
    if (l == NULL)
        goto nomem;
    r->headers = l;
    /* No "Expect: 100-continue" round trip for larger bodies. */
    l = curl_slist_append(r->headers, "Expect:");
    if (l == NULL)
        goto nomem;
    r->headers = l;

    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_URL, in->url);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)in->timeout_ms);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)in->timeout_ms);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curl_err);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
    if (e == CURLE_OK)
        e = curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (e == CURLE_OK && in->body != NULL) {
        e = curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in->body_len);
        if (e == CURLE_OK)
            e = curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, in->body);
    }
    if (e == CURLE_OK && strcmp(in->method, in->body != NULL ? "POST" : "GET") != 0)
        e = curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, in->method);
    if (e != CURLE_OK) {
        say(errbuf, "cannot set up the request to %s: %s", in->url, curl_easy_strerror(e));
        goto out;
    }
    /* Adding only arms curl's timer: the transfer starts from the loop, so the
     * callback never runs inside this call. */
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        say(errbuf, "cannot start the request to %s", in->url);
        goto out;
    }
    r->next = h->reqs;
    if (h->reqs != NULL)
        h->reqs->prev = r;
    h->reqs = r;
    h->n_reqs++;
    r = NULL;
    rc = SK_OK;
    goto out;
nomem:
    say(errbuf, "out of memory");
out:
    if (r != NULL) {
        if (r->easy != NULL)
            curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r);
    }
    return rc;
}

size_t sk_chttp_pending(const struct sk_chttp *h)
{
    return h->n_reqs;
}

void sk_chttp_abort_all(struct sk_chttp *h)
{
    struct sk_chttp_resp resp = {.status = 0, .body = "", .len = 0, .err = "request cancelled"};
    h->aborting++;
    while (h->reqs != NULL)
        req_finish(h->reqs, &resp);
    h->aborting--;
}

void sk_chttp_close(struct sk_chttp *h, void (*on_closed)(void *arg), void *arg)
{
    h->on_closed = on_closed;
    h->closed_arg = arg;
    sk_chttp_abort_all(h);
    h->closing = 1;
    if (h->depth == 0)
        cleanup(h);
}
