/*
 * The HTTP server (core/http/) and the metrics registry (core/metrics.c), in-process:
 * a server with test routes on two loop threads, driven by libcurl and raw sockets.
 * Needs neither Redis nor MariaDB.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "core/http/router.h"
#include "core/http/server.h"
#include "core/metrics.h"
#include "support.h"

#define MAX_BODY 1024

/* --- the test application ---------------------------------------------------------- */

struct test_loop;

/* An answer promised for later: a timer per request, like a store round trip. */
struct pending {
    uv_timer_t timer;
    struct sk_http_req *req;
    struct test_loop *tl;
    const char *what;
    struct pending *prev, *next;
};

struct test_loop {
    unsigned index;
    uv_loop_t *loop;
    struct pending *pending;
};

static atomic_int slow_started;      /* /slow and /never requests that reached their handler */
static atomic_int fail_loop_init_at; /* loop index whose loop_init fails, -1 none */
static atomic_int loops_finished;

static void free_pending(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_pending(struct pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->tl->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
}

static void on_delay(uv_timer_t *t)
{
    struct pending *p = t->data;

    sk_http_respond_json(p->req, 200, json_pack("{s:s,s:b}", "what", p->what, "late", 1));
    unlink_pending(p);
    uv_close((uv_handle_t *)&p->timer, free_pending);
}

static void answer_later(struct sk_http_req *req, unsigned ms, const char *what)
{
    struct test_loop *tl = sk_http_loop_data(req);
    struct pending *p = calloc(1, sizeof(*p));

    ck_assert_ptr_nonnull(p);
    p->req = req;
    p->tl = tl;
    p->what = what;
    p->next = tl->pending;
    if (tl->pending != NULL)
        tl->pending->prev = p;
    tl->pending = p;
    uv_timer_init(tl->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_delay, ms, 0);
}

static int test_loop_init(void *app, unsigned index, uv_loop_t *loop, void **loop_data, char *err)
{
    struct test_loop *tl;

    (void)app;
    if ((int)index == atomic_load(&fail_loop_init_at)) {
        snprintf(err, SK_ERRLEN, "test refuses loop %u", index);
        return SK_ERR;
    }
    tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory");
        return SK_ERR;
    }
    tl->index = index;
    tl->loop = loop;
    *loop_data = tl;
    return SK_OK;
}

/* Like a plugin's detach: every pending callback runs with an error. */
static void test_loop_fini(void *app, unsigned index, uv_loop_t *loop, void *loop_data)
{
    struct test_loop *tl = loop_data;

    (void)app;
    (void)index;
    (void)loop;
    while (tl->pending != NULL) {
        struct pending *p = tl->pending;
        unlink_pending(p);
        uv_timer_stop(&p->timer);
        sk_http_error(p->req, 503, "overloaded", "the loop is stopping");
        uv_close((uv_handle_t *)&p->timer, free_pending);
    }
    free(tl);
    atomic_fetch_add(&loops_finished, 1);
}

static int test_authorize(struct sk_http_req *req)
{
    const char *auth = sk_http_header(req, "Authorization");

    if (auth == NULL || strcmp(auth, "Bearer secret") != 0) {
        sk_http_error(req, 401, "unauthorized", "a valid bearer token is required");
        return SK_ERR;
    }
    sk_http_set_user(req, 42);
    return SK_OK;
}

static void h_hello(struct sk_http_req *req)
{
    struct test_loop *tl = sk_http_loop_data(req);

    sk_http_respond_json(req, 200,
                         json_pack("{s:s,s:i,s:s,s:s}", "hello", "world", "loop", (int)tl->index, "peer",
                                   sk_http_peer(req), "query", sk_http_query(req)));
}

static void h_item_tag(struct sk_http_req *req)
{
    sk_http_respond_json(req, 200,
                         json_pack("{s:I,s:s}", "id", (json_int_t)sk_http_param_id(req, 0), "tag",
                                   sk_http_param_str(req, 0)));
}

static void h_echo(struct sk_http_req *req)
{
    json_t *doc = sk_http_json_body(req, 0, NULL);

    if (doc == NULL)
        return;
    sk_http_respond_json(req, 200, json_pack("{s:o}", "got", doc));
}

static void h_echo_optional(struct sk_http_req *req)
{
    int empty = -1;
    json_t *doc = sk_http_json_body(req, 1, &empty);

    if (doc == NULL && !empty)
        return;
    sk_http_respond_json(req, 200, json_pack("{s:b,s:o*}", "empty", empty, "got", doc));
}

static void h_async(struct sk_http_req *req)
{
    answer_later(req, 20, "async");
}

static void h_slow(struct sk_http_req *req)
{
    atomic_fetch_add(&slow_started, 1);
    answer_later(req, 300, "slow");
}

static void h_never(struct sk_http_req *req)
{
    (void)req; /* a broken handler: never answers */
    atomic_fetch_add(&slow_started, 1);
}

static void h_private(struct sk_http_req *req)
{
    sk_http_respond_json(req, 200, json_pack("{s:I}", "user", (json_int_t)sk_http_user(req)));
}

static void h_header(struct sk_http_req *req)
{
    const char *v = sk_http_header(req, "x-TEST");

    sk_http_respond_json(req, 200, json_pack("{s:s?}", "value", v));
}

static void h_metrics(struct sk_http_req *req)
{
    size_t len = 0;
    char *text = sk_metrics_render(&len);

    if (text == NULL) {
        sk_http_error(req, 500, "internal", "metrics could not be rendered");
        return;
    }
    sk_http_respond(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}

static void h_retry(struct sk_http_req *req)
{
    sk_http_error_retry(req, 7, "slow down, %s", "please");
}

static void h_bad_status(struct sk_http_req *req)
{
    sk_http_respond(req, 1000, "text/plain", "x", 1);
}

static const struct sk_http_route routes[] = {
    {"GET", "/hello", h_hello, 1},
    {"POST", "/hello/{s}", h_hello, 1},
    {"GET", "/items/{id}/tags/{s}", h_item_tag, 1},
    {"POST", "/echo", h_echo, 1},
    {"POST", "/echo-optional", h_echo_optional, 1},
    {"GET", "/async", h_async, 1},
    {"GET", "/slow", h_slow, 1},
    {"GET", "/never", h_never, 1},
    {"GET", "/private", h_private, 0},
    {"GET", "/header", h_header, 1},
    {"GET", "/metrics", h_metrics, 1},
    {"GET", "/retry", h_retry, 1},
    {"GET", "/bad-status", h_bad_status, 1},
};

static struct sk_http_server_conf base_conf(int port)
{
    struct sk_http_server_conf c;

    memset(&c, 0, sizeof(c));
    c.name = "client";
    c.host = "127.0.0.1";
    c.port = (uint16_t)port;
    c.threads = 2;
    c.routes = routes;
    c.n_routes = sizeof(routes) / sizeof(routes[0]);
    c.max_body_bytes = MAX_BODY;
    c.idle_timeout_ms = 2000;
    c.max_connections = 0;
    c.authorize = test_authorize;
    c.loop_init = test_loop_init;
    c.loop_fini = test_loop_fini;
    return c;
}

/* --- fixture ------------------------------------------------------------------------ */

static struct sk_http_server *srv;
static int port;
static char base[64];

static void url(char *out, size_t n, const char *path)
{
    snprintf(out, n, "%s%s", base, path);
}

static struct sk_http_server *start_with(struct sk_http_server_conf *c)
{
    char err[SK_ERRLEN] = "";
    struct sk_http_server *s = sk_http_server_start(c, err);

    ck_assert_msg(s != NULL, "start failed: %s", err);
    return s;
}

static void setup(void)
{
    struct sk_http_server_conf c;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    sk_metrics_free();
    ck_assert_int_eq(sk_metrics_init(), SK_OK);
    atomic_store(&slow_started, 0);
    atomic_store(&fail_loop_init_at, -1);
    atomic_store(&loops_finished, 0);
    port = sk_test_free_port();
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    c = base_conf(port);
    srv = start_with(&c);
}

static void teardown(void)
{
    sk_http_server_stop(srv, 1000);
    srv = NULL;
    sk_metrics_free();
    curl_global_cleanup();
}

/* --- a small libcurl client for what sk_test_http does not do ------------------------ */

struct reply {
    long status;
    long connects;
    char *body;
    size_t body_len;
    char *headers;
    size_t headers_len;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char **buf = arg;
    size_t add = size * n, have = *buf != NULL ? strlen(*buf) : 0;
    char *grown = realloc(*buf, have + add + 1);

    if (grown == NULL)
        return 0;
    memcpy(grown + have, p, add);
    grown[have + add] = '\0';
    *buf = grown;
    return add;
}

/* One request on `c` (reused for keep-alive) or on a fresh handle when c is NULL.
 * Thread-safe: no Check assertions in here. */
static void request(CURL *c, const char *method, const char *u, const char *body, size_t body_len,
                    struct curl_slist *hdrs, long timeout_ms, struct reply *r)
{
    CURL *own = NULL;

    memset(r, 0, sizeof(*r));
    if (c == NULL)
        c = own = curl_easy_init();
    if (c == NULL)
        return;
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
    }
    r->body_len = r->body != NULL ? strlen(r->body) : 0;
    r->headers_len = r->headers != NULL ? strlen(r->headers) : 0;
    if (own != NULL)
        curl_easy_cleanup(own);
}

static void reply_free(struct reply *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

static json_t *reply_json(const struct reply *r)
{
    return r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
}

static const char *err_code(json_t *doc)
{
    json_t *code = json_object_get(json_object_get(doc, "error"), "code");

    return json_is_string(code) ? json_string_value(code) : "";
}

static int has_header(const char *headers, const char *line)
{
    return headers != NULL && strcasestr(headers, line) != NULL;
}

static long get_status(const char *path)
{
    struct reply r;
    char u[256];
    long st;

    url(u, sizeof(u), path);
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    st = r.status;
    reply_free(&r);
    return st;
}

/* Raw TCP to 127.0.0.1:port; -1 on failure. */
static int raw_connect(int p)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read until EOF or timeout; returns bytes read, -1 on timeout without EOF. */
static ssize_t read_until_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t got = 0;
    struct pollfd pfd = {fd, POLLIN, 0};

    for (;;) {
        ssize_t n;
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got + 1 >= cap)
            break;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- router (no server needed) ------------------------------------------------------ */

START_TEST(router_ids_and_strings)
{
    struct sk_http_router *r = NULL;
    struct sk_http_match m;
    char err[SK_ERRLEN];
    static const char *bad_ids[] = {"/items/abc/tags/x", "/items/0/tags/x", "/items/-1/tags/x",
                                    "/items/+1/tags/x", "/items/007/tags/x", "/items/9223372036854775808/tags/x",
                                    "/items/99999999999999999999/tags/x", "/items/1.5/tags/x", "/items//tags/x",
                                    "/items/1/tags/", "/items/1/tags", "/items/1/tags/x/", "/items/1/tags/x/y"};
    size_t i;

    ck_assert_int_eq(sk_http_router_new(routes, sizeof(routes) / sizeof(routes[0]), &r, err), SK_OK);
    sk_http_router_match(r, "GET", 3, "/items/9223372036854775807/tags/red", 35, &m);
    ck_assert_int_eq(m.result, SK_HTTP_MATCH_OK);
    ck_assert_str_eq(routes[m.route].pattern, "/items/{id}/tags/{s}");
    ck_assert_uint_eq(m.n_ids, 1);
    ck_assert_uint_eq(m.ids[0], 9223372036854775807ULL);
    ck_assert_uint_eq(m.n_strs, 1);
    ck_assert_uint_eq(m.str_off[0], 32);
    ck_assert_uint_eq(m.str_len[0], 3);
    for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        sk_http_router_match(r, "GET", 3, bad_ids[i], strlen(bad_ids[i]), &m);
        ck_assert_msg(m.result == SK_HTTP_MATCH_NOT_FOUND, "%s matched", bad_ids[i]);
    }
    sk_http_router_match(r, "DELETE", 6, "/hello", 6, &m);
    ck_assert_int_eq(m.result, SK_HTTP_MATCH_BAD_METHOD);
    ck_assert_str_eq(m.allow, "GET");
    sk_http_router_match(r, "GET", 3, "/hello/x", 8, &m);
    ck_assert_int_eq(m.result, SK_HTTP_MATCH_BAD_METHOD);
    ck_assert_str_eq(m.allow, "POST");
    sk_http_router_match(r, "GET", 3, "", 0, &m);
    ck_assert_int_eq(m.result, SK_HTTP_MATCH_NOT_FOUND);
    sk_http_router_free(r);
}
END_TEST

START_TEST(router_rejects_bad_tables)
{
    static const struct sk_http_route bad_param[] = {{"GET", "/x/{foo}", h_hello, 1}};
    static const struct sk_http_route no_slash[] = {{"GET", "x", h_hello, 1}};
    static const struct sk_http_route lower[] = {{"get", "/x", h_hello, 1}};
    static const struct sk_http_route dup[] = {{"GET", "/x", h_hello, 1}, {"GET", "/x", h_hello, 1}};
    static const struct sk_http_route no_handler[] = {{"GET", "/x", NULL, 1}};
    struct sk_http_router *r = (struct sk_http_router *)&r; /* must stay untouched */
    struct sk_http_router *before = r;
    char err[SK_ERRLEN];

    ck_assert_int_eq(sk_http_router_new(bad_param, 1, &r, err), SK_ERR);
    ck_assert_msg(strstr(err, "{foo}") != NULL, "%s", err);
    ck_assert_int_eq(sk_http_router_new(no_slash, 1, &r, err), SK_ERR);
    ck_assert_msg(strstr(err, "start with '/'") != NULL, "%s", err);
    ck_assert_int_eq(sk_http_router_new(lower, 1, &r, err), SK_ERR);
    ck_assert_msg(strstr(err, "upper-case") != NULL, "%s", err);
    ck_assert_int_eq(sk_http_router_new(dup, 2, &r, err), SK_ERR);
    ck_assert_msg(strstr(err, "both GET /x") != NULL, "%s", err);
    ck_assert_int_eq(sk_http_router_new(no_handler, 1, &r, err), SK_ERR);
    ck_assert_msg(strstr(err, "no handler") != NULL, "%s", err);
    ck_assert_ptr_eq(r, before);
}
END_TEST

/* --- metrics (no server needed) ---------------------------------------------------- */

START_TEST(metrics_registry_and_quantiles)
{
    struct sk_metric *a, *b, *g;
    char *text;
    size_t len = 0;
    int i;

    sk_metrics_free();
    ck_assert_int_eq(sk_metrics_init(), SK_OK);
    a = sk_metric_counter("seckill_test_total", "kind=\"a\"", "A test counter.");
    b = sk_metric_counter("seckill_test_total", "kind=\"a\"", "A test counter.");
    ck_assert_ptr_eq(a, b);
    sk_metric_add(a, 5);
    sk_metric_add(b, 2);
    ck_assert_int_eq(sk_metric_value(a), 7);
    g = sk_metric_gauge("seckill_test_gauge", "", "A test gauge.\nSecond line.");
    sk_metric_set(g, -3);
    ck_assert_int_eq(sk_metric_value(g), -3);

    /* 10 observations in (100 us, 250 us]: the median interpolates to 175 us */
    for (i = 0; i < 10; i++)
        sk_metrics_http("t", "/x", 200, 150);
    ck_assert_int_eq(sk_metrics_http_quantile_us("t", 0.5), 175);
    /* 10 more above 1 s: the 0.99 quantile is capped at the last finite bound */
    for (i = 0; i < 10; i++)
        sk_metrics_http("t", "/x", 500, 5000000);
    ck_assert_int_eq(sk_metrics_http_quantile_us("t", 0.99), 1000000);
    ck_assert_int_eq(sk_metrics_http_quantile_us("t", 0.0), -1);
    ck_assert_int_eq(sk_metrics_http_quantile_us("t", 1.5), -1);
    ck_assert_int_eq(sk_metrics_http_quantile_us("nobody", 0.5), 0);
    sk_metrics_http("t", "/q\"uote", 404, 50);

    text = sk_metrics_render(&len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_msg(strstr(text, "# HELP seckill_test_total A test counter.\n# TYPE seckill_test_total counter\n"
                               "seckill_test_total{kind=\"a\"} 7\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "# HELP seckill_test_gauge A test gauge.\\nSecond line.\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "# TYPE seckill_test_gauge gauge\nseckill_test_gauge -3\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "seckill_http_requests_total{listener=\"t\",route=\"/x\",status=\"200\"} 10\n") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "seckill_http_requests_total{listener=\"t\",route=\"/x\",status=\"500\"} 10\n") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "route=\"/q\\\"uote\",status=\"404\"} 1\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "# TYPE seckill_http_request_duration_seconds histogram\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "_duration_seconds_bucket{listener=\"t\",le=\"0.0001\"} 1\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_bucket{listener=\"t\",le=\"0.00025\"} 11\n") !=
                      NULL, "%s", text);
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_bucket{listener=\"t\",le=\"1\"} 11\n") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_bucket{listener=\"t\",le=\"+Inf\"} 21\n") != NULL,
                  "%s", text);
    /* 10 × 150 us + 10 × 5 s + 50 us */
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_sum{listener=\"t\"} 50.001550\n") != NULL, "%s",
                  text);
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_count{listener=\"t\"} 21\n") != NULL, "%s", text);
    free(text);
    sk_metrics_free();
}
END_TEST

/* Counters from several threads at once: nothing is lost and no series is doubled. */
static void *hammer(void *arg)
{
    int i;
    char route[16];

    (void)arg;
    for (i = 0; i < 2000; i++) {
        snprintf(route, sizeof(route), "/r%d", i % 8);
        sk_metrics_http("h", route, 200 + (i % 3), 10);
    }
    return NULL;
}

START_TEST(metrics_concurrent_http)
{
    pthread_t t[4];
    char *text;
    int i;

    sk_metrics_free();
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    text = sk_metrics_render(NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "seckill_http_request_duration_seconds_count{listener=\"h\"} 8000\n") != NULL, "%s",
                  text);
    /* i%8 == 0 and i%3 == 0 ⇔ i%24 == 0: 84 of 2000 per thread */
    ck_assert_msg(strstr(text, "{listener=\"h\",route=\"/r0\",status=\"200\"} 336\n") != NULL, "%s", text);
    ck_assert_ptr_null(strstr(strstr(text, "route=\"/r0\",status=\"200\"") + 1, "route=\"/r0\",status=\"200\""));
    free(text);
    sk_metrics_free();
}
END_TEST

/* --- the server ---------------------------------------------------------------------- */

START_TEST(sync_json)
{
    struct reply r;
    char u[128];
    json_t *doc;

    url(u, sizeof(u), "/hello?x=1&y=%20");
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(has_header(r.headers, "content-type: application/json"), "%s", r.headers);
    doc = reply_json(&r);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "hello")), "world");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "peer")), "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "query")), "x=1&y=%20");
    /* compact JSON */
    ck_assert_ptr_null(strstr(r.body, ", "));
    json_decref(doc);
    reply_free(&r);

    url(u, sizeof(u), "/hello");
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    doc = reply_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "query")), "");
    json_decref(doc);
    reply_free(&r);
}
END_TEST

START_TEST(path_params)
{
    struct sk_test_resp r;
    char u[160];

    url(u, sizeof(u), "/items/42/tags/red");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), 42);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "tag")), "red");
    sk_test_resp_free(&r);

    url(u, sizeof(u), "/items/9223372036854775807/tags/x");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), INT64_MAX);
    sk_test_resp_free(&r);

    static const char *bad[] = {"/items/abc/tags/x", "/items/0/tags/x", "/items/9223372036854775808/tags/x",
                                "/items/1/tags/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        url(u, sizeof(u), bad[i]);
        ck_assert_msg(sk_test_http("GET", u, NULL, NULL, NULL, &r) == 404, "%s: %ld", bad[i], r.status);
        ck_assert_str_eq(sk_test_err_code(&r), "not_found");
        sk_test_resp_free(&r);
    }
}
END_TEST

START_TEST(unknown_route_404)
{
    struct sk_test_resp r;
    char u[128];
    json_t *msg;

    url(u, sizeof(u), "/no/such/thing");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    msg = json_object_get(json_object_get(r.json, "error"), "message");
    ck_assert_msg(json_is_string(msg) && strstr(json_string_value(msg), "/no/such/thing") != NULL, "%s", r.body);
    ck_assert_msg(has_header(r.headers, "content-type: application/json"), "%s", r.headers);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(wrong_method_405)
{
    struct reply r;
    char u[128];
    json_t *doc;

    url(u, sizeof(u), "/hello");
    request(NULL, "DELETE", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 405);
    doc = reply_json(&r);
    ck_assert_str_eq(err_code(doc), "method_not_allowed");
    ck_assert_msg(has_header(r.headers, "allow: GET"), "%s", r.headers);
    json_decref(doc);
    reply_free(&r);
}
END_TEST

static char *json_of_size(size_t size)
{
    /* {"a":"xxx…"} of exactly `size` bytes */
    char *s = malloc(size + 1);

    ck_assert_ptr_nonnull(s);
    ck_assert_uint_ge(size, 8);
    memset(s, 'x', size);
    memcpy(s, "{\"a\":\"", 6);
    memcpy(s + size - 2, "\"}", 2);
    s[size] = '\0';
    return s;
}

START_TEST(body_limits)
{
    struct reply r;
    char u[128];
    char *body;
    json_t *doc;
    size_t huge = 10 * 1024 * 1024;

    url(u, sizeof(u), "/echo");
    body = json_of_size(MAX_BODY);
    request(NULL, "POST", u, body, MAX_BODY, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    free(body);

    body = json_of_size(MAX_BODY + 1);
    request(NULL, "POST", u, body, MAX_BODY + 1, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 413);
    doc = reply_json(&r);
    ck_assert_str_eq(err_code(doc), "payload_too_large");
    json_decref(doc);
    reply_free(&r);
    free(body);

    /* far beyond the limit: h2o refuses it before buffering (plain-text 413, or the
     * connection is cut while curl still sends) */
    body = malloc(huge);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', huge);
    request(NULL, "POST", u, body, huge, NULL, 10000, &r);
    ck_assert_msg(r.status == 413 || r.status == 0, "status %ld", r.status);
    reply_free(&r);
    free(body);

    ck_assert_int_eq(get_status("/hello"), 200);
}
END_TEST

/* A chunked POST over a raw socket; returns the whole answer (caller frees). */
static char *post_chunked(const char *body, size_t len)
{
    char head[256], *answer = malloc(8192);
    int fd = raw_connect(port), n;

    ck_assert_ptr_nonnull(answer);
    ck_assert_int_ge(fd, 0);
    n = snprintf(head, sizeof(head),
                 "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 "%zx\r\n",
                 len);
    ck_assert_int_eq(send(fd, head, (size_t)n, 0), n);
    ck_assert_int_eq(send(fd, body, len, 0), (ssize_t)len);
    ck_assert_int_eq(send(fd, "\r\n0\r\n\r\n", 7, 0), 7);
    ck_assert_int_ge(read_until_eof(fd, answer, 8192, 5000), 0);
    close(fd);
    return answer;
}

START_TEST(chunked_body_limits)
{
    char *body, *answer;

    body = json_of_size(MAX_BODY);
    answer = post_chunked(body, MAX_BODY);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200 ", 13) == 0, "%s", answer);
    free(answer);
    free(body);

    body = json_of_size(MAX_BODY + 1);
    answer = post_chunked(body, MAX_BODY + 1);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 413 ", 13) == 0 && strstr(answer, "\"payload_too_large\"") != NULL, "%s",
                  answer);
    free(answer);
    free(body);
}
END_TEST

START_TEST(bad_json_400)
{
    struct sk_test_resp r;
    char u[128];
    const char *msg;

    url(u, sizeof(u), "/echo");
    ck_assert_int_eq(sk_test_http("POST", u, NULL, "{\"a\": tru", NULL, &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    ck_assert_msg(msg != NULL && strstr(msg, "line 1") != NULL && strstr(msg, "column") != NULL, "%s", r.body);
    sk_test_resp_free(&r);

    ck_assert_int_eq(sk_test_http("POST", u, NULL, "[1,2]", NULL, &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    ck_assert_msg(msg != NULL && strstr(msg, "JSON object") != NULL, "%s", r.body);
    sk_test_resp_free(&r);

    ck_assert_int_eq(sk_test_http("POST", u, NULL, "{\"a\":1,\"a\":2}", NULL, &r), 400);
    sk_test_resp_free(&r);

    ck_assert_int_eq(sk_test_http("POST", u, NULL, "", NULL, &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    sk_test_resp_free(&r);

    ck_assert_int_eq(sk_test_http("POST", u, NULL, "{\"ok\":[1]}", NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(json_object_get(r.json, "got"), "ok"), 0)), 1);
    sk_test_resp_free(&r);

    url(u, sizeof(u), "/echo-optional");
    ck_assert_int_eq(sk_test_http("POST", u, NULL, "", NULL, &r), 200);
    ck_assert(json_is_true(json_object_get(r.json, "empty")));
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("POST", u, NULL, "{\"k\":2}", NULL, &r), 200);
    ck_assert(json_is_false(json_object_get(r.json, "empty")));
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(headers_and_limits)
{
    struct reply r;
    struct curl_slist *h = NULL;
    char u[128], *big;
    size_t big_len = 600 * 1024;
    json_t *doc;
    int i;

    url(u, sizeof(u), "/header");
    h = curl_slist_append(h, "X-Test: abc");
    request(NULL, "GET", u, NULL, 0, h, 5000, &r);
    curl_slist_free_all(h);
    h = NULL;
    ck_assert_int_eq(r.status, 200);
    doc = reply_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "value")), "abc");
    json_decref(doc);
    reply_free(&r);

    /* one header beyond H2O_MAX_REQLEN */
    big = malloc(big_len + 16);
    ck_assert_ptr_nonnull(big);
    strcpy(big, "X-Big: ");
    memset(big + 7, 'y', big_len);
    big[7 + big_len] = '\0';
    h = curl_slist_append(h, big);
    request(NULL, "GET", u, NULL, 0, h, 5000, &r);
    ck_assert_msg(r.status == 400 || r.status == 0, "status %ld", r.status);
    curl_slist_free_all(h);
    h = NULL;
    reply_free(&r);
    free(big);

    /* more headers than H2O_MAX_HEADERS (100) */
    for (i = 0; i < 120; i++) {
        char line[32];
        snprintf(line, sizeof(line), "X-H%d: v", i);
        h = curl_slist_append(h, line);
    }
    request(NULL, "GET", u, NULL, 0, h, 5000, &r);
    ck_assert_msg(r.status == 400 || r.status == 0, "status %ld", r.status);
    curl_slist_free_all(h);
    reply_free(&r);

    ck_assert_int_eq(get_status("/hello"), 200);
}
END_TEST

START_TEST(authorize_hook)
{
    struct sk_test_resp r;
    char u[128];

    url(u, sizeof(u), "/private");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 401);
    ck_assert_str_eq(sk_test_err_code(&r), "unauthorized");
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("GET", u, "wrong", NULL, NULL, &r), 401);
    sk_test_resp_free(&r);
    ck_assert_int_eq(sk_test_http("GET", u, "secret", NULL, NULL, &r), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "user")), 42);
    sk_test_resp_free(&r);
    /* public routes do not ask */
    url(u, sizeof(u), "/hello");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 200);
    sk_test_resp_free(&r);
}
END_TEST

START_TEST(retry_after_and_bad_status)
{
    struct reply r;
    char u[128];
    json_t *doc;

    url(u, sizeof(u), "/retry");
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 429);
    ck_assert_msg(has_header(r.headers, "retry-after: 7"), "%s", r.headers);
    doc = reply_json(&r);
    ck_assert_str_eq(err_code(doc), "rate_limited");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "error"), "message")), "slow down, please");
    json_decref(doc);
    reply_free(&r);

    ck_assert_int_eq(get_status("/bad-status"), 500);
}
END_TEST

START_TEST(keep_alive)
{
    CURL *c = curl_easy_init();
    struct reply r;
    char u[128];

    ck_assert_ptr_nonnull(c);
    url(u, sizeof(u), "/hello");
    request(c, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 1);
    ck_assert_msg(!has_header(r.headers, "connection: close"), "%s", r.headers);
    reply_free(&r);
    request(c, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 0); /* the same connection */
    reply_free(&r);
    /* HEAD: GET's headers, no body, and the connection stays usable */
    request(c, "HEAD", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 0);
    ck_assert_uint_eq(r.body_len, 0);
    ck_assert_msg(has_header(r.headers, "content-length: "), "%s", r.headers);
    reply_free(&r);
    request(c, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 0);
    ck_assert_msg(r.body != NULL && strstr(r.body, "\"hello\":\"world\"") != NULL, "%s", r.body);
    reply_free(&r);
    /* an error answer keeps the connection too */
    url(u, sizeof(u), "/nope");
    request(c, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_int_eq(r.connects, 0);
    reply_free(&r);
    curl_easy_cleanup(c);
}
END_TEST

START_TEST(async_response)
{
    struct reply r;
    char u[128];
    json_t *doc;
    uint64_t t0 = now_ms();

    url(u, sizeof(u), "/async");
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_ge(now_ms() - t0, 15);
    doc = reply_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "what")), "async");
    json_decref(doc);
    reply_free(&r);
}
END_TEST

START_TEST(async_client_gone)
{
    static const char req[] = "GET /async HTTP/1.1\r\nHost: t\r\n\r\n";
    struct linger lg = {1, 0};
    int fd, i;

    /* a polite close and a reset, each before the 20 ms answer */
    for (i = 0; i < 2; i++) {
        fd = raw_connect(port);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
        sk_test_sleep_ms(5);
        if (i == 1)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    sk_test_sleep_ms(100);
    ck_assert_int_eq(get_status("/hello"), 200);
    ck_assert_int_eq(get_status("/async"), 200);
}
END_TEST

struct client_job {
    char url[128];
    int n;
    int reuse;
    int ok;
    int loops_seen; /* bit per server loop */
};

static void *client_thread(void *arg)
{
    struct client_job *job = arg;
    CURL *c = job->reuse ? curl_easy_init() : NULL;
    struct reply r;
    int i;

    for (i = 0; i < job->n; i++) {
        request(c, "GET", job->url, NULL, 0, NULL, 10000, &r);
        if (r.status == 200) {
            json_t *doc = reply_json(&r);
            job->ok++;
            job->loops_seen |= 1 << (int)json_integer_value(json_object_get(doc, "loop"));
            json_decref(doc);
        }
        reply_free(&r);
    }
    if (c != NULL)
        curl_easy_cleanup(c);
    return NULL;
}

START_TEST(many_requests_across_threads)
{
    struct client_job jobs[4];
    pthread_t t[4];
    int i, seen = 0, ok = 0;
    char *text, want[160];

    for (i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        url(jobs[i].url, sizeof(jobs[i].url), "/hello");
        jobs[i].n = 50;
        jobs[i].reuse = i % 2;
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_thread, &jobs[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += jobs[i].ok;
        seen |= jobs[i].loops_seen;
    }
    ck_assert_int_eq(ok, 200);
    /* 100 fresh connections: SO_REUSEPORT gives both loops some (all on one: 2^-99) */
    ck_assert_int_eq(seen, 3);
    text = sk_metrics_render(NULL);
    snprintf(want, sizeof(want), "seckill_http_requests_total{listener=\"client\",route=\"/hello\",status=\"%d\"} %d\n",
             200, 200);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    free(text);
}
END_TEST

START_TEST(metrics_count_requests)
{
    struct sk_test_resp r;
    char u[128];
    int i;

    for (i = 0; i < 3; i++)
        ck_assert_int_eq(get_status("/hello"), 200);
    ck_assert_int_eq(get_status("/nope"), 404);
    ck_assert_int_eq(get_status("/items/1/tags/a"), 200);
    url(u, sizeof(u), "/metrics");
    ck_assert_int_eq(sk_test_http("GET", u, NULL, NULL, NULL, &r), 200);
    ck_assert_msg(strstr(r.headers, "text/plain") != NULL, "%s", r.headers);
    ck_assert_msg(strstr(r.body, "# TYPE seckill_http_requests_total counter\n") != NULL, "%s", r.body);
    ck_assert_msg(strstr(r.body, "_requests_total{listener=\"client\",route=\"/hello\",status=\"200\"} 3\n"),
                  "%s", r.body);
    ck_assert_msg(strstr(r.body, "{listener=\"client\",route=\"unmatched\",status=\"404\"} 1\n"), "%s", r.body);
    ck_assert_msg(strstr(r.body, "{listener=\"client\",route=\"/items/{id}/tags/{s}\",status=\"200\"} 1\n"), "%s",
                  r.body);
    ck_assert_msg(strstr(r.body, "seckill_http_request_duration_seconds_bucket{listener=\"client\",le=\"+Inf\"} 5\n"),
                  "%s", r.body);
    ck_assert_msg(strstr(r.body, "seckill_http_request_duration_seconds_count{listener=\"client\"} 5\n"), "%s", r.body);
    ck_assert_msg(strstr(r.body, "seckill_http_request_duration_seconds_sum{listener=\"client\"} "), "%s", r.body);
    sk_test_resp_free(&r);
    ck_assert_int_gt(sk_metrics_http_quantile_us("client", 0.5), 0);
    ck_assert_int_le(sk_metrics_http_quantile_us("client", 0.99), 1000000);
}
END_TEST

struct bg_request {
    char url[128];
    struct reply r;
};

static void *bg_request_main(void *arg)
{
    struct bg_request *bg = arg;

    request(NULL, "GET", bg->url, NULL, 0, NULL, 10000, &bg->r);
    return NULL;
}

static void wait_started(int n)
{
    int i;

    for (i = 0; i < 500 && atomic_load(&slow_started) < n; i++)
        sk_test_sleep_ms(5);
    ck_assert_int_ge(atomic_load(&slow_started), n);
}

START_TEST(graceful_stop_finishes_in_flight)
{
    struct bg_request bg;
    pthread_t t;
    uint64_t t0;
    json_t *doc;
    int idle;
    char buf[1024];
    static const char ka[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

    /* an idle keep-alive connection must not hold up the stop */
    idle = raw_connect(port);
    ck_assert_int_ge(idle, 0);
    ck_assert_int_eq(send(idle, ka, sizeof(ka) - 1, 0), (ssize_t)(sizeof(ka) - 1));
    ck_assert_int_gt(recv(idle, buf, sizeof(buf), 0), 0);

    memset(&bg, 0, sizeof(bg));
    url(bg.url, sizeof(bg.url), "/slow");
    ck_assert_int_eq(pthread_create(&t, NULL, bg_request_main, &bg), 0);
    wait_started(1);
    t0 = now_ms();
    sk_http_server_stop(srv, 5000);
    srv = NULL;
    ck_assert_uint_ge(now_ms() - t0, 200); /* it waited for the 300 ms answer … */
    ck_assert_uint_lt(now_ms() - t0, 3000); /* … and not for the idle connection */
    pthread_join(t, NULL);
    ck_assert_int_eq(bg.r.status, 200);
    ck_assert_msg(has_header(bg.r.headers, "connection: close"), "%s", bg.r.headers);
    doc = reply_json(&bg.r);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "what")), "slow");
    json_decref(doc);
    reply_free(&bg.r);
    /* the idle connection was closed */
    ck_assert_int_ge(read_until_eof(idle, buf, sizeof(buf), 2000), 0);
    close(idle);
    ck_assert_int_eq(atomic_load(&loops_finished), 2);
    /* and nothing listens any more */
    ck_assert_int_eq(raw_connect(port), -1);
}
END_TEST

START_TEST(stop_after_grace_answers_503)
{
    struct bg_request slow, never;
    pthread_t t1, t2;
    uint64_t t0;
    json_t *doc;

    memset(&slow, 0, sizeof(slow));
    memset(&never, 0, sizeof(never));
    url(slow.url, sizeof(slow.url), "/slow");
    url(never.url, sizeof(never.url), "/never");
    ck_assert_int_eq(pthread_create(&t1, NULL, bg_request_main, &slow), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, bg_request_main, &never), 0);
    wait_started(2);
    t0 = now_ms();
    sk_http_server_stop(srv, 50);
    srv = NULL;
    ck_assert_uint_lt(now_ms() - t0, 2000);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ck_assert_int_eq(slow.r.status, 503);
    ck_assert_int_eq(never.r.status, 503);
    doc = reply_json(&never.r);
    ck_assert_str_eq(err_code(doc), "overloaded");
    json_decref(doc);
    reply_free(&slow.r);
    reply_free(&never.r);
}
END_TEST

START_TEST(port_in_use)
{
    struct sk_http_server_conf c = base_conf(port);
    char err[SK_ERRLEN] = "", want[32];
    struct sockaddr_in a;
    int fd, other = sk_test_free_port(), one = 1;

    /* the port of a running server (which uses SO_REUSEPORT itself) */
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "Address already in use") != NULL, "%s", err);
    snprintf(want, sizeof(want), ":%d", port);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);

    /* a port somebody else listens on */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)other);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    c = base_conf(other);
    err[0] = '\0';
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "Address already in use") != NULL, "%s", err);
    close(fd);
    ck_assert_int_eq(atomic_load(&loops_finished), 0);

    /* the first server still serves */
    ck_assert_int_eq(get_status("/hello"), 200);
}
END_TEST

START_TEST(bad_conf_refused)
{
    static const struct sk_http_route bad[] = {{"GET", "/x/{foo}", h_hello, 1}};
    struct sk_http_server_conf c = base_conf(sk_test_free_port());
    char err[SK_ERRLEN] = "";

    c.threads = 0;
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "threads") != NULL, "%s", err);
    c = base_conf(c.port);
    c.routes = bad;
    c.n_routes = 1;
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "{foo}") != NULL && strstr(err, "client listener") != NULL, "%s", err);
    c = base_conf(c.port);
    c.host = "not an address";
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "not an address") != NULL, "%s", err);
}
END_TEST

START_TEST(loop_init_failure_leaves_nothing)
{
    struct sk_http_server_conf c = base_conf(sk_test_free_port());
    char err[SK_ERRLEN] = "";
    struct sk_http_server *s2;

    atomic_store(&loops_finished, 0);
    atomic_store(&fail_loop_init_at, 1);
    ck_assert_ptr_null(sk_http_server_start(&c, err));
    ck_assert_msg(strstr(err, "test refuses loop 1") != NULL, "%s", err);
    /* loop 0 started and was stopped again; loop 1 never ran loop_fini */
    ck_assert_int_eq(atomic_load(&loops_finished), 1);
    ck_assert_int_eq(raw_connect(c.port), -1);
    /* the port is free again */
    atomic_store(&fail_loop_init_at, -1);
    s2 = start_with(&c);
    sk_http_server_stop(s2, 100);
}
END_TEST

START_TEST(max_connections_backlog)
{
    struct sk_http_server_conf c = base_conf(sk_test_free_port());
    struct sk_http_server *s2;
    char u[128], buf[1024];
    struct reply r;
    int first;
    static const char ka[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

    c.threads = 1;
    c.max_connections = 1;
    s2 = start_with(&c);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/hello", (int)c.port);
    first = raw_connect(c.port);
    ck_assert_int_ge(first, 0);
    ck_assert_int_eq(send(first, ka, sizeof(ka) - 1, 0), (ssize_t)(sizeof(ka) - 1));
    ck_assert_int_gt(recv(first, buf, sizeof(buf), 0), 0);
    /* the second connection waits in the backlog */
    request(NULL, "GET", u, NULL, 0, NULL, 300, &r);
    ck_assert_int_eq(r.status, 0);
    reply_free(&r);
    close(first);
    /* once the first is gone, the next one is served */
    request(NULL, "GET", u, NULL, 0, NULL, 5000, &r);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    sk_http_server_stop(s2, 100);
}
END_TEST

START_TEST(idle_timeout_drops_silent_client)
{
    struct sk_http_server_conf c = base_conf(sk_test_free_port());
    struct sk_http_server *s2;
    char buf[256];
    uint64_t t0;
    int fd;

    c.idle_timeout_ms = 200;
    s2 = start_with(&c);
    fd = raw_connect(c.port);
    ck_assert_int_ge(fd, 0);
    /* half a request line, then silence */
    ck_assert_int_eq(send(fd, "GET /hel", 8, 0), 8);
    t0 = now_ms();
    ck_assert_int_ge(read_until_eof(fd, buf, sizeof(buf), 3000), 0);
    ck_assert_uint_ge(now_ms() - t0, 100);
    close(fd);
    sk_http_server_stop(s2, 100);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *unit = tcase_create("unit");
    TCase *server = tcase_create("server");

    tcase_add_test(unit, router_ids_and_strings);
    tcase_add_test(unit, router_rejects_bad_tables);
    tcase_add_test(unit, metrics_registry_and_quantiles);
    tcase_add_test(unit, metrics_concurrent_http);
    suite_add_tcase(s, unit);

    tcase_add_checked_fixture(server, setup, teardown);
    tcase_set_timeout(server, 60);
    tcase_add_test(server, sync_json);
    tcase_add_test(server, path_params);
    tcase_add_test(server, unknown_route_404);
    tcase_add_test(server, wrong_method_405);
    tcase_add_test(server, body_limits);
    tcase_add_test(server, chunked_body_limits);
    tcase_add_test(server, bad_json_400);
    tcase_add_test(server, headers_and_limits);
    tcase_add_test(server, authorize_hook);
    tcase_add_test(server, retry_after_and_bad_status);
    tcase_add_test(server, keep_alive);
    tcase_add_test(server, async_response);
    tcase_add_test(server, async_client_gone);
    tcase_add_test(server, many_requests_across_threads);
    tcase_add_test(server, metrics_count_requests);
    tcase_add_test(server, graceful_stop_finishes_in_flight);
    tcase_add_test(server, stop_after_grace_answers_503);
    tcase_add_test(server, port_in_use);
    tcase_add_test(server, bad_conf_refused);
    tcase_add_test(server, loop_init_failure_leaves_nothing);
    tcase_add_test(server, max_connections_backlog);
    tcase_add_test(server, idle_timeout_drops_silent_client);
    suite_add_tcase(s, server);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
