/* Admin API requests over libcurl multi, driven from the UI loop; see net.h. */
#include "net.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <seckill/plugin.h>

/* No admin answer comes near this; a bigger one is a broken daemon or proxy. */
#define MAX_ANSWER (8u << 20)

struct request {
    struct request *prev, *next; /* the requests in flight */
    CURL *easy;
    struct sk_con_tag tag;
    struct curl_slist *headers;
    char *body; /* the request body (libcurl does not copy POSTFIELDS) */
    char *resp; /* the answer's body so far */
    size_t len, cap;
    int too_large;
    char errbuf[CURL_ERROR_SIZE];
};

struct sk_con_net {
    CURLM *multi;
    char *base; /* base URL without a trailing slash */
    char *auth; /* "Authorization: Bearer …" */
    long timeout_ms;
    sk_con_net_cb cb;
    void *arg;
    size_t in_flight;
    struct request *head;
};

static void link_request(struct sk_con_net *net, struct request *r)
{
    r->prev = NULL;
    r->next = net->head;
    if (net->head != NULL)
        net->head->prev = r;
    net->head = r;
    net->in_flight++;
}

static void unlink_request(struct sk_con_net *net, struct request *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        net->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    net->in_flight--;
}

static void request_free(struct request *r)
{
    if (r == NULL)
        return;
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->resp);
    free(r);
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userp)
{
    struct request *r = userp;
    size_t n = size * nmemb;
    if (r->len + n > MAX_ANSWER) {
        r->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->resp, cap);
        if (p == NULL)
            return 0;
        r->resp = p;
        r->cap = cap;
    }
    memcpy(r->resp + r->len, data, n);
    r->len += n;
    r->resp[r->len] = '\0';
    return n;
}

struct sk_con_net *sk_con_net_new(const char *base_url, const char *token, long timeout_ms, sk_con_net_cb cb, void *arg,
                                  char *err, size_t errlen)
{
    struct sk_con_net *net = calloc(1, sizeof(*net));
    size_t n;
    if (net == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot be initialised");
        free(net);
        net = NULL;
        goto fail;
    }
    net->multi = curl_multi_init();
    net->base = strdup(base_url);
    n = strlen("Authorization: Bearer ") + strlen(token) + 1;
    net->auth = malloc(n);
    if (net->multi == NULL || net->base == NULL || net->auth == NULL) {
        snprintf(err, errlen, "libcurl cannot be initialised");
        goto fail;
    }
    snprintf(net->auth, n, "Authorization: Bearer %s", token);
    for (n = strlen(net->base); n > 0 && net->base[n - 1] == '/'; n--)
        net->base[n - 1] = '\0';
    net->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    net->cb = cb;
    net->arg = arg;
    return net;
fail:
    sk_con_net_free(net);
    return NULL;
}

void sk_con_net_free(struct sk_con_net *net)
{
    if (net == NULL)
        return;
    if (net->multi != NULL) {
        /* Requests in flight are dropped without their callbacks. */
        while (net->head != NULL) {
            struct request *r = net->head;
            unlink_request(net, r);
            curl_multi_remove_handle(net->multi, r->easy);
            request_free(r);
        }
        curl_multi_cleanup(net->multi);
    }
    free(net->base);
    free(net->auth);
    free(net);
    curl_global_cleanup();
}

int sk_con_net_start(struct sk_con_net *net, const char *method, const char *path, const char *body,
                     const struct sk_con_tag *tag, char *err, size_t errlen)
{
    struct request *r = calloc(1, sizeof(*r));
    char *url = NULL;
    size_t n;
    int rc = SK_ERR;

    if (r == NULL || (r->easy = curl_easy_init()) == NULL) {
        snprintf(err, errlen, "cannot start a request: out of memory");
        goto out;
    }
    r->tag = *tag;
    n = strlen(net->base) + strlen(path) + 1;
    if ((url = malloc(n)) == NULL || (body != NULL && (r->body = strdup(body)) == NULL)) {
        snprintf(err, errlen, "cannot start a request: out of memory");
        goto out;
    }
    snprintf(url, n, "%s%s", net->base, path);
    /* "Expect:" off: a small JSON body goes out at once, without a 100-continue wait. */
    const char *const headers[] = {net->auth, "Accept: application/json",
                                   "Expect:", body != NULL ? "Content-Type: application/json" : NULL};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]) && headers[i] != NULL; i++) {
        struct curl_slist *h = curl_slist_append(r->headers, headers[i]);
        if (h == NULL) {
            snprintf(err, errlen, "cannot start a request: out of memory");
            goto out;
        }
        r->headers = h;
    }
    CURL *e = r->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK || curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, net->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, net->timeout_ms < 2000 ? net->timeout_ms : 2000L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        snprintf(err, errlen, "cannot start a request: libcurl refused an option");
        goto out;
    }
    if (r->body != NULL) {
        if (curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body)) != CURLE_OK) {
            snprintf(err, errlen, "cannot start a request: libcurl refused the body");
            goto out;
        }
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        /* an empty body, sent as such (not a read from stdin) */
        if (curl_easy_setopt(e, CURLOPT_POSTFIELDS, "") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L) != CURLE_OK) {
            snprintf(err, errlen, "cannot start a request: libcurl refused the body");
            goto out;
        }
    }
    if (curl_multi_add_handle(net->multi, e) != CURLM_OK) {
        snprintf(err, errlen, "cannot start a request: libcurl refused it");
        goto out;
    }
    link_request(net, r);
    r = NULL;
    rc = SK_OK;
out:
    free(url);
    request_free(r);
    return rc;
}

int sk_con_net_wait(struct sk_con_net *net, int fd, int timeout_ms)
{
    struct curl_waitfd extra = {.fd = fd, .events = CURL_WAIT_POLLIN, .revents = 0};
    int numfds = 0;
    if (curl_multi_poll(net->multi, fd >= 0 ? &extra : NULL, fd >= 0 ? 1 : 0, timeout_ms, &numfds) != CURLM_OK) {
        /* libcurl could not poll: still wait for the keyboard, never spin. */
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        if (fd >= 0 && poll(&p, 1, timeout_ms) > 0)
            return 1;
        return 0;
    }
    return fd >= 0 && (extra.revents & CURL_WAIT_POLLIN) != 0;
}

void sk_con_net_run(struct sk_con_net *net)
{
    int running = 0, left = 0;
    CURLMsg *msg;
    curl_multi_perform(net->multi, &running);
    while ((msg = curl_multi_info_read(net->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode result = msg->data.result;
        char *priv = NULL;
        struct sk_con_answer a = {0};
        char why[CURL_ERROR_SIZE + 32];
        if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL)
            continue; /* not ours: cannot happen, every handle is added with one */
        struct request *r = (struct request *)priv;
        curl_multi_remove_handle(net->multi, e);
        unlink_request(net, r);
        if (result == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            a.status = status;
            a.body = r->resp;
            a.len = r->len;
        } else {
            if (r->too_large)
                snprintf(why, sizeof(why), "answer larger than %u bytes", MAX_ANSWER);
            else
                snprintf(why, sizeof(why), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(result));
            a.transport = why;
        }
        net->cb(net->arg, &r->tag, &a);
        request_free(r);
    }
}

size_t sk_con_net_in_flight(const struct sk_con_net *net)
{
    return net->in_flight;
}

char *sk_con_net_escape(const char *s, char *buf, size_t len)
{
    char *e = curl_easy_escape(NULL, s, 0);
    snprintf(buf, len, "%s", e != NULL ? e : "");
    curl_free(e);
    return buf;
}
