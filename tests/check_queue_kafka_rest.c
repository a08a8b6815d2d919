/*
 * The kafka_rest queue plugin (plugins/queue/kafka_rest/) and the Kafka REST Proxy
 * emulator (scripts/kafka-rest-emulator.py).
 *
 * Every case starts its own emulator (python3, on a free loopback port, with a
 * temp data folder) and, where the relay is involved, uses the stack's Redis
 * (db 11) with the real redis stock plugin writing the reservation logs. The
 * plugin runs through the plugin host on a libuv loop of the test's own; the
 * emulator is also checked directly over HTTP against the protocol reference
 * (content types, error codes, offsets, rebalancing, durability).
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <seckill/plugin.h>
#include <uv.h>

#include "core/config.h"
#include "core/plugin_host.h"
#include "core/timeutil.h"
#include "tests/support.h"

#define REDIS_DB 11
#define ACT      91
#define TOPIC    "sk-orders"
#define GROUP    "sk-test"
#define CT_V2    "application/vnd.kafka.v2+json"
#define CT_JSON  "application/vnd.kafka.json.v2+json"
#define MAXREC   256

/* ---- the emulator ------------------------------------------------------------ */

struct emu {
    pid_t pid;
    int port;
    char dir[256];
    char url[64];
    const char *args[8]; /* extra arguments, NULL-terminated */
};

struct resp {
    long status;
    char *body;
    size_t len;
    json_t *json;
};

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct resp *r = userp;
    char *b = realloc(r->body, r->len + size * n + 1);
    if (b == NULL)
        return 0;
    memcpy(b + r->len, p, size * n);
    r->body = b;
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    if (r->json != NULL)
        json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* One HTTP call with exactly the headers given (NULL: none). Returns the status,
 * 0 when no answer came. */
static long http(const char *method, const char *url, const char *ctype, const char *accept, const char *body,
                 struct resp *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[256];

    memset(out, 0, sizeof(*out));
    ck_assert_ptr_nonnull(c);
    snprintf(line, sizeof(line), "Content-Type: %s", ctype ? ctype : "");
    h = curl_slist_append(h, ctype ? line : "Content-Type:");
    snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "");
    h = curl_slist_append(h, accept ? line : "Accept:");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (out->len > 0)
        out->json = json_loadb(out->body, out->len, 0, NULL);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out->status;
}

static long error_code(const struct resp *r)
{
    return (long)json_integer_value(json_object_get(r->json, "error_code"));
}

/* Expect status and error_code (0: no error body expected). */
#define EXPECT(r, st, code)                                                                                            \
    do {                                                                                                               \
        ck_assert_msg((r).status == (st), "HTTP %ld, expected %d: %s", (r).status, (st), (r).body ? (r).body : "");    \
        if ((code) != 0) {                                                                                             \
            ck_assert_msg(error_code(&(r)) == (code), "error_code %ld, expected %d: %s", error_code(&(r)), (code),     \
                          (r).body ? (r).body : "");                                                                   \
            ck_assert_msg(json_is_string(json_object_get((r).json, "message")), "no message: %s", (r).body);           \
        }                                                                                                              \
    } while (0)

static void emu_start(struct emu *m)
{
    char script[600], port[16];
    const char *argv[24];
    int n = 0;

    if (m->dir[0] == '\0') {
        snprintf(m->dir, sizeof(m->dir), "/tmp/sktest-kafka-XXXXXX");
        ck_assert_msg(mkdtemp(m->dir) != NULL, "mkdtemp: %s", strerror(errno));
        m->port = sk_test_free_port();
        snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->port);
    }
    snprintf(script, sizeof(script), "%s/scripts/kafka-rest-emulator.py", SK_TEST_SRCDIR);
    snprintf(port, sizeof(port), "%d", m->port);
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--data";
    argv[n++] = m->dir;
    for (int i = 0; i < 8 && m->args[i] != NULL; i++)
        argv[n++] = m->args[i];
    argv[n] = NULL;
    fflush(NULL);
    m->pid = fork();
    ck_assert_msg(m->pid >= 0, "fork: %s", strerror(errno));
    if (m->pid == 0) {
        /* Dies with the test, even when an assertion ends it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp("python3", (char *const *)argv);
        fprintf(stderr, "cannot run python3: %s\n", strerror(errno));
        _exit(127);
    }
    char url[128];
    snprintf(url, sizeof(url), "%s/topics", m->url);
    for (int i = 0; i < 200; i++) {
        struct resp r;
        int st;
        long s = http("GET", url, NULL, CT_V2, NULL, &r);
        resp_free(&r);
        if (s == 200)
            return;
        ck_assert_msg(waitpid(m->pid, &st, WNOHANG) == 0, "the emulator exited (status %d)", st);
        sk_test_sleep_ms(50);
    }
    ck_abort_msg("the emulator did not answer on %s within 10 s", m->url);
}

static void emu_stop(struct emu *m, int sig)
{
    int st;
    if (m->pid <= 0)
        return;
    kill(m->pid, sig);
    waitpid(m->pid, &st, 0);
    m->pid = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void emu_end(struct emu *m)
{
    emu_stop(m, SIGTERM);
    nftw(m->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the plugins on a loop ----------------------------------------------------- */

struct env {
    struct sk_config cfg;
    struct sk_plugin_conf pc, spc;
    struct sk_loaded_plugin p, sp; /* the queue plugin, the stock plugin */
    const struct sk_queue_ops *ops;
    const struct sk_stock_ops *sops;
    uv_loop_t loop;
    uv_timer_t guard;
    int expired;
    void *conn, *sconn;
    redisContext *r;
    struct emu emu;
};

static const char *plugin_build_dir(void)
{
    const char *v = getenv("SK_PLUGIN_BUILD_DIR");
    return v && *v ? v : SK_TEST_BUILDDIR "/plugins/.libs";
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static int run_until_flag(struct env *e, const int *flag, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while (!*flag && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return *flag;
}

static void run_for(struct env *e, unsigned ms)
{
    int never = 0;
    run_until_flag(e, &never, ms);
}

static int run_until_ready(struct env *e, int want, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while ((e->ops->ready(e->conn) != 0) != want && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return (e->ops->ready(e->conn) != 0) == want;
}

static void env_init(struct env *e)
{
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(uv_timer_init(&e->loop, &e->guard), 0);
    e->guard.data = &e->expired;
    snprintf(e->cfg.plugin_dir, sizeof(e->cfg.plugin_dir), "%s", plugin_build_dir());
}

/* Load kafka_rest with config `json`; SK_OK or SK_ERR with the loader's sentence. */
static int load_queue(struct env *e, const char *json, char *err)
{
    e->pc.present = 1;
    snprintf(e->pc.name, sizeof(e->pc.name), "kafka_rest");
    free(e->pc.config_json);
    e->pc.config_json = strdup(json);
    snprintf(e->pc.where, sizeof(e->pc.where), "check_queue_kafka_rest");
    int rc = sk_plugin_load(&e->cfg, &e->pc, SK_PLUGIN_QUEUE, &e->p, err);
    if (rc == SK_OK)
        e->ops = sk_plugin_queue_ops(&e->p);
    return rc;
}

static void attach(struct env *e)
{
    char err[SK_ERRLEN] = "";
    ck_assert_msg(e->ops->attach(e->p.instance, &e->loop, &e->conn, err) == SK_OK, "%s", err);
    ck_assert_msg(run_until_ready(e, 1, 8000), "the plugin never became ready (proxy %s)", e->emu.url);
}

/* The emulator (with extra args) plus kafka_rest with `extra` config keys. relay:
 * with the stack's Redis (db 11, prefix "kt"), else relay off. */
static void up(struct env *e, const char *const *emu_args, int relay, const char *extra)
{
    char json[2048], err[SK_ERRLEN] = "";
    env_init(e);
    for (int i = 0; emu_args != NULL && emu_args[i] != NULL && i < 7; i++)
        e->emu.args[i] = emu_args[i];
    emu_start(&e->emu);
    uv_update_time(&e->loop); /* the loop slept while python started */
    json_t *conf = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "url", e->emu.url, "topic", TOPIC, "group",
                             GROUP, "instance", "t-inst", "timeout_ms", 2000, "fetch_timeout_ms", 300,
                             "retry_initial_ms", 50, "retry_max_ms", 300);
    if (relay) {
        e->r = sk_test_redis(REDIS_DB);
        json_t *redis = json_pack("{s:s, s:i, s:i, s:s, s:i}", "host", sk_test_redis_host(), "port",
                                  sk_test_redis_port(), "db", REDIS_DB, "key_prefix", "kt", "claim_idle_ms", 60000);
        json_object_update(conf, redis);
        json_decref(redis);
    } else {
        json_object_set_new(conf, "relay", json_false());
    }
    /* The case's own keys win. */
    snprintf(json, sizeof(json), "{%s}", extra);
    json_t *more = json_loads(json, 0, NULL);
    ck_assert_msg(more != NULL, "bad extra config %s", extra);
    json_object_update(conf, more);
    json_decref(more);
    char *text = json_dumps(conf, JSON_COMPACT);
    json_decref(conf);
    int rc = load_queue(e, text, err);
    free(text);
    ck_assert_msg(rc == SK_OK, "%s", err);
    attach(e);
}

/* The redis stock plugin on the same Redis db and prefix, for real reservation logs. */
static void up_stock(struct env *e)
{
    char json[512], err[SK_ERRLEN] = "";
    snprintf(json, sizeof(json), "{\"host\":\"%s\",\"port\":%d,\"db\":%d,\"key_prefix\":\"kt\"}", sk_test_redis_host(),
             sk_test_redis_port(), REDIS_DB);
    e->spc.present = 1;
    snprintf(e->spc.name, sizeof(e->spc.name), "redis");
    e->spc.config_json = strdup(json);
    snprintf(e->spc.where, sizeof(e->spc.where), "check_queue_kafka_rest");
    ck_assert_msg(sk_plugin_load(&e->cfg, &e->spc, SK_PLUGIN_STOCK, &e->sp, err) == SK_OK, "%s", err);
    e->sops = sk_plugin_stock_ops(&e->sp);
    ck_assert_msg(e->sops->attach(e->sp.instance, &e->loop, &e->sconn, err) == SK_OK, "%s", err);
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, 5000, 0);
    while (!e->sops->ready(e->sconn) && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    ck_assert_msg(e->sops->ready(e->sconn), "the stock plugin did not connect to redis");
}

static void detach(struct env *e)
{
    if (e->conn != NULL)
        e->ops->detach(e->conn);
    e->conn = NULL;
}

static void down(struct env *e)
{
    detach(e);
    if (e->sconn != NULL)
        e->sops->detach(e->sconn);
    uv_close((uv_handle_t *)&e->guard, NULL);
    ck_assert_int_eq(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    ck_assert_msg(uv_loop_close(&e->loop) == 0, "detach left handles open on the loop");
    sk_plugin_unload(&e->p);
    sk_plugin_unload(&e->sp);
    free(e->pc.config_json);
    free(e->spc.config_json);
    if (e->r != NULL)
        redisFree(e->r);
    emu_end(&e->emu);
}

/* ---- verbs and their callbacks ---------------------------------------------------- */

struct rec {
    char order_no[128];
    struct sk_reservation r;
};

struct got {
    int done, calls, status;
    char err[SK_ERRLEN];
    size_t n, n_bad;
    struct rec recs[MAXREC];
    char bad_raw[32][512], bad_why[32][SK_ERRLEN], bad_src[32][320];
    void *token;
    int64_t lag;
};

static void on_batch(void *arg, int status, const struct sk_queue_batch *b, const char *err)
{
    struct got *g = arg;
    g->calls++;
    g->done = 1;
    g->status = status;
    if (status != SK_OK) {
        ck_assert_ptr_null(b);
        ck_assert_ptr_nonnull(err);
        snprintf(g->err, sizeof(g->err), "%s", err);
        return;
    }
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(b->n <= MAXREC && b->n_bad <= 32, "batch too large for the test");
    g->n = b->n;
    g->n_bad = b->n_bad;
    for (size_t i = 0; i < b->n; i++) {
        snprintf(g->recs[i].order_no, sizeof(g->recs[i].order_no), "%s", b->records[i].order_no);
        g->recs[i].r = b->records[i];
        g->recs[i].r.order_no = g->recs[i].order_no;
    }
    for (size_t i = 0; i < b->n_bad; i++) {
        snprintf(g->bad_raw[i], sizeof(g->bad_raw[i]), "%s", b->bad[i].raw);
        snprintf(g->bad_why[i], sizeof(g->bad_why[i]), "%s", b->bad[i].why);
        snprintf(g->bad_src[i], sizeof(g->bad_src[i]), "%s", b->bad[i].source);
    }
    g->token = b->ack_token;
    ck_assert_msg((b->n + b->n_bad == 0) == (b->ack_token == NULL), "token must be NULL exactly for empty batches");
}

static void on_done(void *arg, int status, const char *err)
{
    struct got *g = arg;
    g->calls++;
    g->done = 1;
    g->status = status;
    if (status != SK_OK) {
        ck_assert_ptr_nonnull(err);
        snprintf(g->err, sizeof(g->err), "%s", err);
    }
}

static void on_lag(void *arg, int status, int64_t lag, const char *err)
{
    struct got *g = arg;
    g->calls++;
    g->done = 1;
    g->status = status;
    g->lag = lag;
    if (status != SK_OK)
        snprintf(g->err, sizeof(g->err), "%s", err);
}

/* Start a verb, check its callback did not run inside the call, run until it has
 * (within ms), and check it ran once. */
#define RUN(e, g, call, ms)                                                                                            \
    do {                                                                                                               \
        memset(&(g), 0, sizeof(g));                                                                                    \
        ck_assert_int_eq((call), SK_OK);                                                                               \
        ck_assert_msg((g).calls == 0, "the callback ran inside the verb call");                                        \
        ck_assert_msg(run_until_flag((e), &(g).done, (ms)), "no callback within %d ms", (int)(ms));                    \
        ck_assert_int_eq((g).calls, 1);                                                                                \
    } while (0)

#define OK(g) ck_assert_msg((g).status == SK_OK, "verb failed: %s", (g).err)

static struct sk_reservation resv(const char *order_no, uint64_t user, uint64_t item, uint32_t seq)
{
    return (struct sk_reservation){
        .order_no = order_no,
        .user_id = user,
        .activity_id = ACT,
        .item_id = item,
        .seq = seq,
        .price_cents = 990 + (int64_t)(user % 1000),
        .reserved_at_ms = 1700000000000LL + (int64_t)(user % 1000),
        .expires_at_ms = 1700000900000LL + (int64_t)(user % 1000),
    };
}

static void publish(struct env *e, const struct sk_reservation *r, size_t n)
{
    static struct got g;
    RUN(e, g, e->ops->publish(e->conn, r, n, on_done, &g), 5000);
    OK(g);
}

struct sres {
    int done, calls, status;
    enum sk_reserve_outcome outcome;
    char err[SK_ERRLEN];
};

static void on_stock(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct sres *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    if (status == SK_OK)
        x->outcome = reply->outcome;
    else
        snprintf(x->err, sizeof(x->err), "%s", err);
}

/* Put item on sale (20 s ago until in an hour) through the stock plugin. */
static void stock_publish(struct env *e, uint64_t item, int64_t stock)
{
    struct sres x;
    int64_t now = sk_now_ms();
    struct sk_stock_item it = {.activity_id = ACT,
                               .item_id = item,
                               .stock = stock,
                               .per_user_limit = 1,
                               .price_cents = 1990,
                               .starts_at_ms = now - 20000,
                               .ends_at_ms = now + 3600000};
    RUN(e, x, e->sops->publish(e->sconn, &it, on_stock, &x), 5000);
    OK(x);
}

/* A real reservation: the stock plugin appends it to the item's reservation log. */
static void stock_reserve(struct env *e, uint64_t item, uint64_t user, const char *order_no)
{
    struct sres x;
    int64_t now = sk_now_ms();
    struct sk_reserve_req req = {.activity_id = ACT,
                                 .item_id = item,
                                 .user_id = user,
                                 .order_no = order_no,
                                 .now_ms = now,
                                 .expires_at_ms = now + 900000};
    RUN(e, x, e->sops->reserve(e->sconn, &req, on_stock, &x), 5000);
    OK(x);
    ck_assert_int_eq(x.outcome, SK_RESERVED);
}

/* A set of order numbers seen, with how often. */
struct seen {
    char no[MAXREC][128];
    int count[MAXREC];
    size_t n;
    size_t total;
    size_t bad;
    char bad_why[SK_ERRLEN], bad_src[320]; /* the last bad record's */
};

static void seen_add(struct seen *s, const char *no)
{
    s->total++;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->no[i], no) == 0) {
            s->count[i]++;
            return;
        }
    }
    ck_assert_int_lt(s->n, MAXREC);
    snprintf(s->no[s->n], sizeof(s->no[0]), "%s", no);
    s->count[s->n++] = 1;
}

static int seen_count(const struct seen *s, const char *no)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->no[i], no) == 0)
            return s->count[i];
    }
    return 0;
}

/* Consume until `want` distinct order numbers were seen or ms passed; ack (or keep
 * in tokens) every batch. Returns the distinct count. */
static size_t consume_until(struct env *e, const uint64_t *items, size_t n_items, size_t want, unsigned ms, int ack,
                            struct seen *s, void **tokens, size_t *n_tokens)
{
    static struct got g, a;
    uint64_t deadline = uv_now(&e->loop) + ms;
    while (s->n < want && uv_now(&e->loop) < deadline) {
        RUN(e, g, e->ops->consume(e->conn, items, n_items, 100, 200, on_batch, &g), 10000);
        OK(g);
        for (size_t i = 0; i < g.n; i++)
            seen_add(s, g.recs[i].order_no);
        s->bad += g.n_bad;
        if (g.n_bad > 0) {
            snprintf(s->bad_why, sizeof(s->bad_why), "%s", g.bad_why[g.n_bad - 1]);
            snprintf(s->bad_src, sizeof(s->bad_src), "%s", g.bad_src[g.n_bad - 1]);
        }
        if (g.token == NULL)
            continue;
        if (ack) {
            RUN(e, a, e->ops->ack(e->conn, g.token, on_done, &a), 5000);
            OK(a);
        } else if (tokens != NULL) {
            tokens[(*n_tokens)++] = g.token;
        }
        uv_update_time(&e->loop);
    }
    return s->n;
}

/* Nothing more comes for `ms`. */
static void expect_nothing(struct env *e, const uint64_t *items, size_t n_items, unsigned ms)
{
    static struct got g;
    uint64_t deadline = uv_now(&e->loop) + ms;
    while (uv_now(&e->loop) < deadline) {
        RUN(e, g, e->ops->consume(e->conn, items, n_items, 100, 200, on_batch, &g), 10000);
        OK(g);
        ck_assert_msg(g.n == 0 && g.n_bad == 0, "%zu records (%zu bad) delivered again, first %s", g.n, g.n_bad,
                      g.n ? g.recs[0].order_no : g.bad_raw[0]);
        uv_update_time(&e->loop);
    }
}

static int64_t lag(struct env *e, const uint64_t *items, size_t n_items)
{
    static struct got g;
    RUN(e, g, e->ops->lag(e->conn, items, n_items, on_lag, &g), 5000);
    OK(g);
    return g.lag;
}

/* The group's committed offset of a partition, through a fresh instance. */
static int64_t committed(struct env *e, const char *group, int partition)
{
    char url[256], body[256];
    struct resp r;
    snprintf(url, sizeof(url), "%s/consumers/%s", e->emu.url, group);
    http("POST", url, CT_V2, CT_V2, "{\"format\":\"json\",\"auto.offset.reset\":\"earliest\"}", &r);
    EXPECT(r, 200, 0);
    snprintf(url, sizeof(url), "%s/offsets", json_string_value(json_object_get(r.json, "base_uri")));
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"partitions\":[{\"topic\":\"" TOPIC "\",\"partition\":%d}]}", partition);
    http("GET", url, CT_V2, CT_V2, body, &r);
    EXPECT(r, 200, 0);
    int64_t off = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "offsets"), 0), "offset"));
    resp_free(&r);
    *strrchr(url, '/') = '\0';
    http("DELETE", url, NULL, NULL, NULL, &r);
    resp_free(&r);
    return off;
}

/* Produce one record with a raw JSON value straight to the emulator. */
static void produce_raw(struct env *e, const char *value_json)
{
    char url[128], body[1024];
    struct resp r;
    snprintf(url, sizeof(url), "%s/topics/" TOPIC, e->emu.url);
    snprintf(body, sizeof(body), "{\"records\":[{\"key\":\"junk\",\"value\":%s}]}", value_json);
    http("POST", url, CT_JSON, CT_V2, body, &r);
    EXPECT(r, 200, 0);
    ck_assert(json_is_integer(json_object_get(json_array_get(json_object_get(r.json, "offsets"), 0), "offset")));
    resp_free(&r);
}

/* ================================================================================ */
/* The emulator against the reference                                               */
/* ================================================================================ */

static void emu_only(struct emu *m, const char *const *args)
{
    memset(m, 0, sizeof(*m));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; args != NULL && args[i] != NULL && i < 7; i++)
        m->args[i] = args[i];
    emu_start(m);
}

START_TEST(emulator_content_types_and_bodies)
{
    struct emu m;
    struct resp r;
    char url[256];
    static const char *const args[] = {"--max-record-bytes", "200", NULL};
    emu_only(&m, args);

    snprintf(url, sizeof(url), "%s/topics/t1", m.url);
    /* Produce wants embedded JSON records. */
    http("POST", url, "application/json", CT_V2, "{\"records\":[{\"value\":1}]}", &r);
    EXPECT(r, 415, 415);
    resp_free(&r);
    http("POST", url, CT_V2, CT_V2, "{\"records\":[{\"value\":1}]}", &r);
    EXPECT(r, 415, 415);
    resp_free(&r);
    http("POST", url, CT_JSON, CT_V2, "{\"records\":[", &r);
    EXPECT(r, 422, 42201);
    resp_free(&r);
    http("POST", url, CT_JSON, CT_V2, "{\"records\":\"x\"}", &r);
    EXPECT(r, 422, 42202);
    resp_free(&r);
    http("POST", url, CT_JSON, CT_V2, "{\"records\":[{\"key\":\"a\"}]}", &r);
    EXPECT(r, 422, 42202);
    resp_free(&r);
    http("POST", url, CT_JSON, "text/html", "{\"records\":[{\"value\":1}]}", &r);
    EXPECT(r, 406, 406);
    resp_free(&r);
    /* Nothing of that was written: the topic does not exist yet. */
    snprintf(url, sizeof(url), "%s/topics/t1", m.url);
    http("GET", url, NULL, CT_V2, NULL, &r);
    EXPECT(r, 404, 40401);
    resp_free(&r);

    /* A good produce: one offset per record, in order; a record too large fails
     * alone (200 is not success for every record). */
    http(
        "POST", url, CT_JSON, CT_V2,
        "{\"records\":[{\"key\":\"k1\",\"value\":{\"a\":1}},{\"key\":\"k2\",\"value\":\""
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},"
        "{\"key\":\"k1\",\"value\":{\"a\":2}}]}",
        &r);
    EXPECT(r, 200, 0);
    json_t *offs = json_object_get(r.json, "offsets");
    ck_assert_int_eq(json_array_size(offs), 3);
    json_t *o0 = json_array_get(offs, 0), *o1 = json_array_get(offs, 1), *o2 = json_array_get(offs, 2);
    ck_assert(json_is_null(json_object_get(o0, "error_code")));
    ck_assert(json_is_integer(json_object_get(o0, "offset")));
    ck_assert_int_eq(json_integer_value(json_object_get(o1, "error_code")), 50002);
    ck_assert(json_is_null(json_object_get(o1, "offset")));
    ck_assert(json_is_string(json_object_get(o1, "error")));
    /* Same key, same partition, next offset. */
    ck_assert_int_eq(json_integer_value(json_object_get(o2, "partition")),
                     json_integer_value(json_object_get(o0, "partition")));
    ck_assert_int_eq(json_integer_value(json_object_get(o2, "offset")),
                     json_integer_value(json_object_get(o0, "offset")) + 1);
    ck_assert(json_is_null(json_object_get(r.json, "key_schema_id")));
    resp_free(&r);
    /* A partition that does not exist. */
    http("POST", url, CT_JSON, CT_V2, "{\"records\":[{\"value\":1,\"partition\":99}]}", &r);
    EXPECT(r, 404, 40402);
    resp_free(&r);
    http("GET", url, NULL, CT_V2, NULL, &r);
    EXPECT(r, 200, 0);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "partitions")), 3);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/topics/nope", m.url);
    http("GET", url, NULL, CT_V2, NULL, &r);
    EXPECT(r, 404, 40401);
    resp_free(&r);
    emu_end(&m);
}
END_TEST

/* Create, subscribe, fetch, commit, read back, delete, on instance "name". */
static void make_consumer(const struct emu *m, const char *group, const char *name, char *base, size_t baselen)
{
    char url[256], body[256];
    struct resp r;
    snprintf(url, sizeof(url), "%s/consumers/%s", m->url, group);
    snprintf(
        body, sizeof(body),
        "{\"name\":\"%s\",\"format\":\"json\",\"auto.offset.reset\":\"earliest\",\"auto.commit.enable\":\"false\"}",
        name);
    http("POST", url, CT_V2, CT_V2, body, &r);
    EXPECT(r, 200, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "instance_id")), name);
    snprintf(base, baselen, "%s", json_string_value(json_object_get(r.json, "base_uri")));
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/subscription", base);
    http("POST", url, CT_V2, NULL, "{\"topics\":[\"t1\"]}", &r);
    EXPECT(r, 204, 0);
    resp_free(&r);
}

static json_t *fetch(const char *base, int timeout_ms)
{
    char url[320];
    struct resp r;
    snprintf(url, sizeof(url), "%s/records?timeout=%d&max_bytes=1000000", base, timeout_ms);
    http("GET", url, NULL, CT_JSON, NULL, &r);
    EXPECT(r, 200, 0);
    ck_assert_msg(json_is_array(r.json), "%s", r.body);
    json_t *a = json_incref(r.json);
    resp_free(&r);
    return a;
}

START_TEST(emulator_consumers)
{
    struct emu m;
    struct resp r;
    char url[320], base[256], body[256];
    emu_only(&m, NULL);

    snprintf(url, sizeof(url), "%s/topics/t1", m.url);
    http("POST", url, CT_JSON, CT_V2, "{\"records\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":2}]}", &r);
    EXPECT(r, 200, 0);
    resp_free(&r);

    /* Control requests want the v2 content type. */
    snprintf(url, sizeof(url), "%s/consumers/g1", m.url);
    http("POST", url, "application/json", CT_V2, "{\"name\":\"c1\",\"format\":\"json\"}", &r);
    EXPECT(r, 415, 415);
    resp_free(&r);
    http("POST", url, CT_V2, CT_V2, "{\"name\":\"c1\",\"format\":\"json\",\"bogus\":1}", &r);
    EXPECT(r, 422, 42202);
    resp_free(&r);
    make_consumer(&m, "g1", "c1", base, sizeof(base));
    ck_assert_msg(strstr(base, "/consumers/g1/instances/c1") != NULL, "%s", base);
    /* The same name twice in a group. */
    http("POST", url, CT_V2, CT_V2, "{\"name\":\"c1\",\"format\":\"json\"}", &r);
    EXPECT(r, 409, 40902);
    resp_free(&r);

    /* Records want Accept: the JSON embedded format. */
    snprintf(url, sizeof(url), "%s/records?timeout=100", base);
    http("GET", url, NULL, CT_V2, NULL, &r);
    EXPECT(r, 406, 406);
    resp_free(&r);
    http("GET", url, NULL, NULL, NULL, &r);
    EXPECT(r, 406, 406);
    resp_free(&r);
    json_t *recs = fetch(base, 1000);
    ck_assert_int_eq(json_array_size(recs), 2);
    json_t *rec0 = json_array_get(recs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(rec0, "topic")), "t1");
    int part = (int)json_integer_value(json_object_get(rec0, "partition"));
    int64_t off = json_integer_value(json_object_get(rec0, "offset"));
    json_decref(recs);
    /* Nothing more: the long poll waits about its timeout, then answers []. */
    uint64_t t0 = uv_hrtime();
    recs = fetch(base, 400);
    uint64_t waited = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(json_array_size(recs), 0);
    ck_assert_msg(waited >= 350 && waited < 3000, "waited %" PRIu64 " ms for timeout=400", waited);
    json_decref(recs);

    /* Commit the offset of the last record processed: the proxy stores it + 1. */
    snprintf(url, sizeof(url), "%s/offsets", base);
    http("POST", url, "text/plain", NULL, "{}", &r);
    EXPECT(r, 415, 415);
    resp_free(&r);
    http("POST", url, CT_V2, NULL, "{\"offsets\":[{\"topic\":\"t1\",\"partition\":0}]}", &r);
    EXPECT(r, 422, 42202);
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"offsets\":[{\"topic\":\"t1\",\"partition\":%d,\"offset\":%" PRId64 "}]}", part,
             off);
    http("POST", url, CT_V2, NULL, body, &r);
    ck_assert_msg(r.status == 200 || r.status == 204, "commit: HTTP %ld %s", r.status, r.body);
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"partitions\":[{\"topic\":\"t1\",\"partition\":%d}]}", part);
    http("GET", url, CT_V2, CT_V2, body, &r);
    EXPECT(r, 200, 0);
    json_t *got = json_array_get(json_object_get(r.json, "offsets"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(got, "offset")), off + 1);
    ck_assert_int_eq(json_integer_value(json_object_get(got, "partition")), part);
    resp_free(&r);
    /* Offsets of an unknown topic. */
    http("GET", url, CT_V2, CT_V2, "{\"partitions\":[{\"topic\":\"zz\",\"partition\":0}]}", &r);
    EXPECT(r, 404, 40401);
    resp_free(&r);

    /* Unknown instance, then a deleted one. */
    snprintf(url, sizeof(url), "%s/consumers/g1/instances/nobody/records", m.url);
    http("GET", url, NULL, CT_JSON, NULL, &r);
    EXPECT(r, 404, 40403);
    resp_free(&r);
    http("DELETE", base, NULL, NULL, NULL, &r);
    EXPECT(r, 204, 0);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/records", base);
    http("GET", url, NULL, CT_JSON, NULL, &r);
    EXPECT(r, 404, 40403);
    resp_free(&r);
    http("DELETE", base, NULL, NULL, NULL, &r);
    EXPECT(r, 404, 40403);
    resp_free(&r);
    emu_end(&m);
}
END_TEST

START_TEST(emulator_rebalance_timeout_and_restart)
{
    struct emu m;
    struct resp r;
    char url[320], a[256], b[256], body[512];
    static const char *const args[] = {"--instance-timeout-ms", "1500", NULL};
    emu_only(&m, args);

    snprintf(url, sizeof(url), "%s/topics/t1", m.url);
    snprintf(body, sizeof(body),
             "{\"records\":[{\"value\":0,\"partition\":0},{\"value\":1,\"partition\":1},"
             "{\"value\":2,\"partition\":2},{\"value\":3,\"partition\":0}]}");
    http("POST", url, CT_JSON, CT_V2, body, &r);
    EXPECT(r, 200, 0);
    resp_free(&r);

    /* Two instances share the three partitions; together they get every record once. */
    make_consumer(&m, "g2", "a", a, sizeof(a));
    make_consumer(&m, "g2", "b", b, sizeof(b));
    json_t *ra = fetch(a, 300), *rb = fetch(b, 300);
    ck_assert_int_eq(json_array_size(ra) + json_array_size(rb), 4);
    ck_assert_msg(json_array_size(ra) > 0 && json_array_size(rb) > 0, "one instance got every partition");
    size_t from_a = json_array_size(ra);
    json_decref(ra);
    json_decref(rb);
    /* a leaves without committing: b now owns its partitions and gets a's records
     * again, from the committed offset (none: the start). */
    http("DELETE", a, NULL, NULL, NULL, &r);
    EXPECT(r, 204, 0);
    resp_free(&r);
    rb = fetch(b, 300);
    ck_assert_int_eq(json_array_size(rb), from_a);
    /* Commit everything fetched (empty body). */
    snprintf(url, sizeof(url), "%s/offsets", b);
    http("POST", url, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200 || r.status == 204, "commit all: HTTP %ld %s", r.status, r.body);
    resp_free(&r);
    json_decref(rb);

    /* An idle instance expires: 40403 afterwards. */
    sk_test_sleep_ms(2200);
    snprintf(url, sizeof(url), "%s/records", b);
    http("GET", url, NULL, CT_JSON, NULL, &r);
    EXPECT(r, 404, 40403);
    resp_free(&r);

    /* Restart: records and committed offsets are on disk; a new instance of g2
     * gets nothing, a new group gets everything. */
    emu_stop(&m, SIGKILL);
    emu_start(&m);
    make_consumer(&m, "g2", "c", a, sizeof(a));
    ra = fetch(a, 300);
    ck_assert_msg(json_array_size(ra) == 0, "%zu committed records delivered again after a restart",
                  json_array_size(ra));
    json_decref(ra);
    snprintf(url, sizeof(url), "%s/offsets", a);
    http("GET", url, CT_V2, CT_V2, "{\"partitions\":[{\"topic\":\"t1\",\"partition\":0}]}", &r);
    EXPECT(r, 200, 0);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "offsets"), 0), "offset")), 2);
    resp_free(&r);
    make_consumer(&m, "g3", "d", b, sizeof(b));
    rb = fetch(b, 300);
    ck_assert_int_eq(json_array_size(rb), 4);
    json_decref(rb);
    emu_end(&m);
}
END_TEST

/* ================================================================================ */
/* The plugin                                                                        */
/* ================================================================================ */

START_TEST(config_refused)
{
    struct env e;
    char err[SK_ERRLEN];
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"topic\":\"t\",\"relay\":false}", "config key url: missing"},
        {"{\"url\":\"http://127.0.0.1:1\",\"relay\":false}", "config key topic: missing"},
        {"{\"url\":\"ftp://x\",\"topic\":\"t\",\"relay\":false}", "config key url:"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":false,\"bogus\":1}", "config key bogus: unknown"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":false,\"timeout_ms\":\"5\"}",
         "config key timeout_ms: must be an integer"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":false,\"timeout_ms\":0}",
         "config key timeout_ms: 0 is out of range"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":\"yes\"}",
         "config key relay: must be true or false"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":false,\"flavour\":\"kafka\"}",
         "config key flavour:"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"a b\",\"relay\":false}", "config key topic:"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"group\":\"g/1\",\"relay\":false}", "config key group:"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"port\":70000}", "config key port:"},
        {"{\"url\":\"http://127.0.0.1:1\",\"topic\":\"t\",\"relay\":false,\"retry_initial_ms\":500,"
         "\"retry_max_ms\":100}",
         "config key retry_max_ms:"},
        {"[1]", "config must be a mapping"},
    };
    env_init(&e);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(load_queue(&e, bad[i].json, err) == SK_ERR, "accepted %s", bad[i].json);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "%s: %s", bad[i].json, err);
    }
    /* And a good one loads (no proxy needed to load). */
    ck_assert_msg(load_queue(&e, "{\"url\":\"http://127.0.0.1:1/\",\"topic\":\"t\",\"relay\":false}", err) == SK_OK,
                  "%s", err);
    sk_plugin_unload(&e.p);
    free(e.pc.config_json);
    uv_close((uv_handle_t *)&e.guard, NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
}
END_TEST

START_TEST(round_trip_all_fields)
{
    struct env e;
    struct got g, a;
    struct seen s = {0};
    up(&e, NULL, 0, "");

    struct sk_reservation in[3] = {
        resv("RT-1", 1, 10, 1),
        resv("RT-2", INT64_MAX, INT64_MAX, UINT32_MAX),
        resv("RT-3", 3, 10, 2),
    };
    in[1].price_cents = INT64_MAX;
    in[1].reserved_at_ms = 0;
    in[1].expires_at_ms = INT64_MAX;
    publish(&e, in, 3);
    ck_assert_int_eq(lag(&e, NULL, 0), 3);

    /* The consumer instance is made on first use; records come in key order per
     * partition, so collect them all and compare by order number. */
    void *tokens[16];
    size_t nt = 0;
    struct rec got[3];
    size_t n_got = 0;
    for (int round = 0; round < 20 && n_got < 3; round++) {
        RUN(&e, g, e.ops->consume(e.conn, NULL, 0, 100, 300, on_batch, &g), 10000);
        OK(g);
        for (size_t i = 0; i < g.n; i++) {
            got[n_got] = g.recs[i];
            got[n_got].r.order_no = got[n_got].order_no;
            n_got++;
        }
        ck_assert_msg(g.n_bad == 0, "bad record %s: %s", g.bad_raw[0], g.bad_why[0]);
        if (g.token)
            tokens[nt++] = g.token;
    }
    ck_assert_int_eq(n_got, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct sk_reservation *w = NULL;
        for (size_t j = 0; j < 3; j++)
            if (strcmp(in[j].order_no, got[i].order_no) == 0)
                w = &in[j];
        ck_assert_msg(w != NULL, "unknown order %s", got[i].order_no);
        ck_assert_uint_eq(got[i].r.user_id, w->user_id);
        ck_assert_uint_eq(got[i].r.activity_id, w->activity_id);
        ck_assert_uint_eq(got[i].r.item_id, w->item_id);
        ck_assert_uint_eq(got[i].r.seq, w->seq);
        ck_assert_int_eq(got[i].r.price_cents, w->price_cents);
        ck_assert_int_eq(got[i].r.reserved_at_ms, w->reserved_at_ms);
        ck_assert_int_eq(got[i].r.expires_at_ms, w->expires_at_ms);
        seen_add(&s, got[i].order_no);
    }
    for (size_t i = 0; i < nt; i++) {
        RUN(&e, a, e.ops->ack(e.conn, tokens[i], on_done, &a), 5000);
        OK(a);
    }
    ck_assert_int_eq(lag(&e, NULL, 0), 0);

    /* A bad reservation is refused through the callback and nothing is produced. */
    struct sk_reservation badr = resv("", 1, 1, 1);
    RUN(&e, g, e.ops->publish(e.conn, &badr, 1, on_done, &g), 5000);
    ck_assert_int_eq(g.status, SK_ERR);
    ck_assert_msg(strstr(g.err, "order number") != NULL, "%s", g.err);
    badr = resv("BIG", (uint64_t)INT64_MAX + 1, 1, 1);
    RUN(&e, g, e.ops->publish(e.conn, &badr, 1, on_done, &g), 5000);
    ck_assert_int_eq(g.status, SK_ERR);
    /* A token acked twice is refused, not a crash. */
    RUN(&e, a, e.ops->ack(e.conn, tokens[0], on_done, &a), 5000);
    ck_assert_int_eq(a.status, SK_ERR);

    /* A new consumer instance of the same group gets nothing more. */
    detach(&e);
    attach(&e);
    expect_nothing(&e, NULL, 0, 1200);
    ck_assert_int_eq(lag(&e, NULL, 0), 0);
    down(&e);
}
END_TEST

START_TEST(acks_commit_in_fetch_order)
{
    struct env e;
    struct got g[4], a1, a2;
    char names[10][16];
    struct sk_reservation in[10];
    up(&e, NULL, 0, "");
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "ORD-%d", i);
        in[i] = resv(names[i], (uint64_t)i + 1, 5, 1);
    }
    /* One partition's worth: everything to partition 0 keeps the order simple. */
    publish(&e, in, 10);

    /* max 4: the rest waits in the plugin's buffer for the next consume. */
    size_t total = 0;
    int nb = 0;
    for (int round = 0; round < 20 && total < 10; round++) {
        RUN(&e, g[nb], e.ops->consume(e.conn, NULL, 0, 4, 300, on_batch, &g[nb]), 10000);
        OK(g[nb]);
        ck_assert_int_le(g[nb].n, 4);
        total += g[nb].n;
        if (g[nb].token != NULL)
            nb++;
        ck_assert_int_le(nb, 4);
    }
    ck_assert_int_eq(total, 10);
    ck_assert_int_ge(nb, 3);
    /* Ack the second batch first: it waits for the first (committing it alone
     * would skip the first batch's records if the daemon died now). */
    memset(&a2, 0, sizeof(a2));
    ck_assert_int_eq(e.ops->ack(e.conn, g[1].token, on_done, &a2), SK_OK);
    run_for(&e, 400);
    ck_assert_int_eq(a2.calls, 0);
    RUN(&e, a1, e.ops->ack(e.conn, g[0].token, on_done, &a1), 5000);
    OK(a1);
    ck_assert(run_until_flag(&e, &a2.done, 5000));
    OK(a2);
    for (int i = 2; i < nb; i++) {
        RUN(&e, a1, e.ops->ack(e.conn, g[i].token, on_done, &a1), 5000);
        OK(a1);
    }
    ck_assert_int_eq(lag(&e, NULL, 0), 0);
    detach(&e);
    attach(&e);
    expect_nothing(&e, NULL, 0, 1000);
    down(&e);
}
END_TEST

START_TEST(relay_from_reservation_logs)
{
    struct env e;
    struct seen s = {0};
    const uint64_t item = 4242;
    enum { N = 12 };
    char order[N][32];
    up(&e, NULL, 1, "");
    up_stock(&e);

    stock_publish(&e, item, 20);
    for (int i = 0; i < N; i++) {
        snprintf(order[i], sizeof(order[i]), "RL-%d", i);
        stock_reserve(&e, item, 500 + (uint64_t)i, order[i]);
    }
    redisReply *rr = redisCommand(e.r, "XLEN kt:{item:%" PRIu64 "}:log", item);
    ck_assert_int_eq(rr->integer, N);
    freeReplyObject(rr);
    /* A log entry that is not a reservation travels on as a bad record. */
    rr = redisCommand(e.r, "XADD kt:{item:%" PRIu64 "}:log * order_no JUNK user_id notanumber", item);
    ck_assert_int_eq(rr->type, REDIS_REPLY_STRING);
    freeReplyObject(rr);

    ck_assert_int_ge(lag(&e, &item, 1), N);
    ck_assert_int_eq(consume_until(&e, &item, 1, N, 15000, 1, &s, NULL, NULL), N);
    /* The bad entry may come in the same batch or a later one. */
    for (int round = 0; round < 10 && s.bad == 0; round++)
        consume_until(&e, &item, 1, N + 1, 300, 1, &s, NULL, NULL);
    ck_assert_int_eq(s.bad, 1);
    ck_assert_msg(strncmp(s.bad_why, "in the reservation log: ", 24) == 0, "%s", s.bad_why);
    ck_assert_msg(strstr(s.bad_src, "kt:{item:4242}:log ") == s.bad_src && strstr(s.bad_src, ", relayed as " TOPIC "-"),
                  "%s", s.bad_src);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen_count(&s, order[i]) >= 1, "%s never delivered", order[i]);
    /* Acked in Redis (and deleted from the log) once Kafka had them. */
    rr = redisCommand(e.r, "XLEN kt:{item:%" PRIu64 "}:log", item);
    ck_assert_int_eq(rr->integer, 0);
    freeReplyObject(rr);
    ck_assert_int_eq(lag(&e, &item, 1), 0);

    /* A new instance of the same group: nothing more, from Redis or from Kafka. */
    detach(&e);
    attach(&e);
    expect_nothing(&e, &item, 1, 1000);
    down(&e);
}
END_TEST

START_TEST(nack_delivers_again)
{
    struct env e;
    struct got a;
    struct seen s1 = {0}, s2 = {0};
    char names[5][16];
    struct sk_reservation in[5];
    void *tokens[16];
    size_t nt = 0;
    up(&e, NULL, 0, "");
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof(names[i]), "NK-%d", i);
        in[i] = resv(names[i], (uint64_t)i + 1, 6, 1);
    }
    publish(&e, in, 5);
    ck_assert_int_eq(consume_until(&e, NULL, 0, 5, 8000, 0, &s1, tokens, &nt), 5);
    /* Give the first batch back: the instance is replaced and every record not
     * committed comes again. */
    e.ops->nack(e.conn, tokens[0]);
    for (size_t i = 1; i < nt; i++) {
        /* Batches of the old instance: acked, but never committed. */
        RUN(&e, a, e.ops->ack(e.conn, tokens[i], on_done, &a), 5000);
        OK(a);
    }
    ck_assert_int_eq(consume_until(&e, NULL, 0, 5, 8000, 1, &s2, NULL, NULL), 5);
    expect_nothing(&e, NULL, 0, 800);
    down(&e);
}
END_TEST

START_TEST(lost_instance_delivers_again)
{
    struct env e;
    struct got a;
    struct seen s1 = {0}, s2 = {0}, s3 = {0};
    char names[4][16];
    struct sk_reservation in[4];
    void *tokens[16];
    size_t nt = 0;
    static const char *const args[] = {"--instance-timeout-ms", "1200", NULL};
    up(&e, args, 0, "");
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof(names[i]), "LI-%d", i);
        in[i] = resv(names[i], (uint64_t)i + 1, 7, 1);
    }
    publish(&e, in, 4);
    ck_assert_int_eq(consume_until(&e, NULL, 0, 4, 8000, 0, &s1, tokens, &nt), 4);
    /* The proxy forgets the idle instance: the next consume makes a new one and
     * gets the records again, from the committed offset. */
    run_for(&e, 2000);
    ck_assert_int_eq(consume_until(&e, NULL, 0, 4, 8000, 1, &s2, NULL, NULL), 4);
    /* The old batches' acks succeed without committing anything. */
    for (size_t i = 0; i < nt; i++) {
        RUN(&e, a, e.ops->ack(e.conn, tokens[i], on_done, &a), 5000);
        OK(a);
    }
    expect_nothing(&e, NULL, 0, 800);

    /* And an instance deleted behind the plugin's back (another operator). */
    snprintf(names[0], sizeof(names[0]), "LI-9");
    in[0] = resv(names[0], 9, 7, 1);
    publish(&e, in, 1);
    struct resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/consumers/" GROUP "/instances/t-inst-0", e.emu.url);
    http("DELETE", url, NULL, NULL, NULL, &r);
    EXPECT(r, 204, 0);
    resp_free(&r);
    ck_assert_int_eq(consume_until(&e, NULL, 0, 1, 8000, 1, &s3, NULL, NULL), 1);
    ck_assert_int_eq(seen_count(&s3, "LI-9"), 1);
    down(&e);
}
END_TEST

START_TEST(bad_records_acked_with_batch)
{
    struct env e;
    struct seen s = {0};
    struct got g, a;
    up(&e, NULL, 0, "");
    struct sk_reservation good = resv("GOOD-1", 1, 8, 1);
    /* All on one key, so one partition, in this order. */
    static const char *const junk[] = {
        "\"just a string\"",
        "42",
        "{\"order_no\":\"X1\"}",
        "{\"order_no\":\"X2\",\"user_id\":\"7\",\"activity_id\":1,\"item_id\":1,\"seq\":1,\"price_cents\":1,"
        "\"reserved_at_ms\":1,\"expires_at_ms\":1}",
        "{\"order_no\":\"X3\",\"user_id\":7,\"activity_id\":1,\"item_id\":1,\"seq\":0,\"price_cents\":1,"
        "\"reserved_at_ms\":1,\"expires_at_ms\":1}",
        "null",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        produce_raw(&e, junk[i]);
    publish(&e, &good, 1);

    size_t bad = 0;
    int saw_string = 0, saw_seq = 0;
    for (int round = 0; round < 20 && (s.n < 1 || bad < 6); round++) {
        RUN(&e, g, e.ops->consume(e.conn, NULL, 0, 100, 300, on_batch, &g), 10000);
        OK(g);
        for (size_t i = 0; i < g.n; i++)
            seen_add(&s, g.recs[i].order_no);
        for (size_t i = 0; i < g.n_bad; i++) {
            ck_assert_msg(g.bad_why[i][0] != '\0', "a bad record without a reason");
            ck_assert_msg(strncmp(g.bad_src[i], TOPIC "-", strlen(TOPIC) + 1) == 0 && strchr(g.bad_src[i], '@'),
                          "source %s", g.bad_src[i]);
            if (strcmp(g.bad_raw[i], "\"just a string\"") == 0) {
                saw_string = 1;
                ck_assert_msg(strstr(g.bad_why[i], "not a JSON object") != NULL, "%s", g.bad_why[i]);
            }
            if (strstr(g.bad_raw[i], "X3") != NULL) {
                saw_seq = 1;
                ck_assert_msg(strstr(g.bad_why[i], "seq") != NULL, "%s", g.bad_why[i]);
            }
        }
        bad += g.n_bad;
        if (g.token != NULL) {
            RUN(&e, a, e.ops->ack(e.conn, g.token, on_done, &a), 5000);
            OK(a);
        }
    }
    ck_assert_int_eq(bad, 6);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(seen_count(&s, "GOOD-1"), 1);
    ck_assert(saw_string && saw_seq);
    /* Acked with their batch: a new instance gets nothing. */
    detach(&e);
    attach(&e);
    expect_nothing(&e, NULL, 0, 1000);
    down(&e);
}
END_TEST

START_TEST(proxy_down_then_back_loses_nothing)
{
    struct env e;
    struct got g;
    struct seen s1 = {0}, s2 = {0};
    const uint64_t item = 4343;
    char order[10][32];
    up(&e, NULL, 1, "\"fetch_timeout_ms\":3000");
    up_stock(&e);
    stock_publish(&e, item, 50);
    for (int i = 0; i < 10; i++) {
        snprintf(order[i], sizeof(order[i]), "PD-%d", i);
        if (i == 5) {
            ck_assert_int_eq(consume_until(&e, &item, 1, 5, 10000, 1, &s1, NULL, NULL), 5);
            /* The proxy dies while a long poll is in flight: it fails at once. */
            memset(&g, 0, sizeof(g));
            ck_assert_int_eq(e.ops->consume(e.conn, &item, 1, 100, 3000, on_batch, &g), SK_OK);
            run_for(&e, 100);
            uint64_t t0 = uv_now(&e.loop);
            emu_stop(&e.emu, SIGKILL);
            ck_assert(run_until_flag(&e, &g.done, 5000));
            uv_update_time(&e.loop);
            ck_assert_msg(uv_now(&e.loop) - t0 < 2000, "the consume took %" PRIu64 " ms to fail", uv_now(&e.loop) - t0);
        }
        stock_reserve(&e, item, 900 + (uint64_t)i, order[i]);
    }
    ck_assert_int_eq(g.status, SK_ERR);
    /* While the proxy is away: not ready, and every verb fails fast with a reason. */
    ck_assert(run_until_ready(&e, 0, 3000));
    uint64_t t0 = uv_now(&e.loop);
    RUN(&e, g, e.ops->consume(e.conn, &item, 1, 100, 1000, on_batch, &g), 3000);
    ck_assert_int_eq(g.status, SK_ERR);
    ck_assert_msg(strstr(g.err, "kafka rest proxy") != NULL, "%s", g.err);
    struct sk_reservation one = resv("PD-direct", 1, item, 1);
    RUN(&e, g, e.ops->publish(e.conn, &one, 1, on_done, &g), 3000);
    ck_assert_int_eq(g.status, SK_ERR);
    RUN(&e, g, e.ops->lag(e.conn, &item, 1, on_lag, &g), 3000);
    ck_assert_int_eq(g.status, SK_ERR);
    uv_update_time(&e.loop);
    ck_assert_msg(uv_now(&e.loop) - t0 < 1000, "failing fast took %" PRIu64 " ms", uv_now(&e.loop) - t0);
    /* The reservations wait in Redis meanwhile. */
    redisReply *rr = redisCommand(e.r, "XLEN kt:{item:%" PRIu64 "}:log", item);
    ck_assert_int_eq(rr->integer, 5);
    freeReplyObject(rr);

    /* Back, same data: every reservation arrives, and what was committed before
     * is not delivered again. */
    emu_start(&e.emu);
    ck_assert_msg(run_until_ready(&e, 1, 5000), "not ready after the proxy came back");
    ck_assert_int_eq(consume_until(&e, &item, 1, 5, 15000, 1, &s2, NULL, NULL), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(seen_count(&s2, order[i]) == 0, "%s (committed) delivered again", order[i]);
    for (int i = 5; i < 10; i++)
        ck_assert_msg(seen_count(&s2, order[i]) >= 1, "%s lost", order[i]);
    expect_nothing(&e, &item, 1, 600);
    ck_assert_int_eq(lag(&e, &item, 1), 0);
    down(&e);
}
END_TEST

START_TEST(relay_failure_retried)
{
    struct env e;
    struct got g;
    struct seen s = {0};
    const uint64_t item = 4444;
    up(&e, NULL, 1, "\"timeout_ms\":400,\"claim_idle_ms\":1000");
    up_stock(&e);
    stock_publish(&e, item, 10);
    stock_reserve(&e, item, 1, "RF-1");
    stock_reserve(&e, item, 2, "RF-2");
    stock_reserve(&e, item, 3, "RF-3");
    /* The proxy hangs while the relay produces: the produce times out, the batch
     * is given back in Redis (pending), and the consume fails. */
    kill(e.emu.pid, SIGSTOP);
    RUN(&e, g, e.ops->consume(e.conn, &item, 1, 100, 200, on_batch, &g), 5000);
    ck_assert_int_eq(g.status, SK_ERR);
    redisReply *rr = redisCommand(e.r, "XPENDING kt:{item:%" PRIu64 "}:log seckill-kafka-relay", item);
    ck_assert_int_eq(rr->element[0]->integer, 3);
    freeReplyObject(rr);
    kill(e.emu.pid, SIGCONT);
    ck_assert(run_until_ready(&e, 1, 5000));
    /* Claimed again after claim_idle_ms and relayed: nothing lost (a record the
     * stopped proxy took after all comes twice, which is fine). */
    ck_assert_int_eq(consume_until(&e, &item, 1, 3, 15000, 1, &s, NULL, NULL), 3);
    /* Whatever reached Kafka first, the log entries themselves are relayed and
     * acknowledged (then deleted) once claimed again. */
    long long left = -1;
    for (int round = 0; round < 60 && left != 0; round++) {
        consume_until(&e, &item, 1, 4, 250, 1, &s, NULL, NULL);
        rr = redisCommand(e.r, "XLEN kt:{item:%" PRIu64 "}:log", item);
        left = rr->integer;
        freeReplyObject(rr);
    }
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(lag(&e, &item, 1), 0);
    down(&e);
}
END_TEST

START_TEST(hung_proxy_times_out)
{
    struct env e;
    struct got g;
    up(&e, NULL, 0, "\"timeout_ms\":400");
    struct sk_reservation one = resv("HUNG-1", 1, 1, 1);
    /* The proxy stops answering (but keeps its sockets): the verb fails after
     * timeout_ms, not later. */
    kill(e.emu.pid, SIGSTOP);
    uint64_t t0 = uv_now(&e.loop);
    RUN(&e, g, e.ops->publish(e.conn, &one, 1, on_done, &g), 5000);
    uv_update_time(&e.loop);
    uint64_t took = uv_now(&e.loop) - t0;
    ck_assert_int_eq(g.status, SK_ERR);
    ck_assert_msg(strstr(g.err, "no answer within 400 ms") != NULL, "%s", g.err);
    ck_assert_msg(took >= 350 && took < 1500, "took %" PRIu64 " ms", took);
    ck_assert_int_eq(e.ops->ready(e.conn), 0);
    kill(e.emu.pid, SIGCONT);
    ck_assert(run_until_ready(&e, 1, 5000));
    publish(&e, &one, 1);
    down(&e);
}
END_TEST

START_TEST(detach_fails_pending)
{
    struct env e;
    struct got c1, p1;
    up(&e, NULL, 0, "\"fetch_timeout_ms\":5000");
    struct sk_reservation one = resv("DT-1", 1, 1, 1);
    memset(&c1, 0, sizeof(c1));
    memset(&p1, 0, sizeof(p1));
    /* A long poll in flight, and a produce. */
    ck_assert_int_eq(e.ops->consume(e.conn, NULL, 0, 10, 5000, on_batch, &c1), SK_OK);
    run_for(&e, 300);
    ck_assert_int_eq(e.ops->publish(e.conn, &one, 1, on_done, &p1), SK_OK);
    detach(&e);
    run_for(&e, 50);
    ck_assert_int_eq(c1.calls, 1);
    ck_assert_int_eq(c1.status, SK_ERR);
    ck_assert_int_eq(p1.calls, 1);
    ck_assert_int_eq(p1.status, SK_ERR);
    down(&e); /* the loop ends: every handle closed */
}
END_TEST

START_TEST(redpanda_flavour_commits)
{
    struct env e;
    struct seen s = {0};
    static const char *const args[] = {"--flavour", "redpanda", NULL};
    up(&e, args, 0, "\"flavour\":\"redpanda\"");
    struct sk_reservation in[2] = {resv("RP-1", 1, 2, 1), resv("RP-2", 2, 2, 1)};
    publish(&e, in, 2);
    ck_assert_int_eq(consume_until(&e, NULL, 0, 2, 8000, 1, &s, NULL, NULL), 2);
    ck_assert_int_eq(lag(&e, NULL, 0), 0);
    int64_t sum = 0;
    for (int p = 0; p < 3; p++) {
        int64_t off = committed(&e, GROUP, p);
        sum += off > 0 ? off : 0;
    }
    ck_assert_int_eq(sum, 2);
    down(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_kafka_rest");
    TCase *emu = tcase_create("emulator");
    tcase_set_timeout(emu, 60);
    tcase_add_test(emu, emulator_content_types_and_bodies);
    tcase_add_test(emu, emulator_consumers);
    tcase_add_test(emu, emulator_rebalance_timeout_and_restart);
    suite_add_tcase(s, emu);
    TCase *verbs = tcase_create("plugin");
    tcase_set_timeout(verbs, 60);
    tcase_add_test(verbs, config_refused);
    tcase_add_test(verbs, round_trip_all_fields);
    tcase_add_test(verbs, acks_commit_in_fetch_order);
    tcase_add_test(verbs, relay_from_reservation_logs);
    tcase_add_test(verbs, nack_delivers_again);
    tcase_add_test(verbs, lost_instance_delivers_again);
    tcase_add_test(verbs, bad_records_acked_with_batch);
    tcase_add_test(verbs, redpanda_flavour_commits);
    suite_add_tcase(s, verbs);
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 90);
    tcase_add_test(faults, proxy_down_then_back_loses_nothing);
    tcase_add_test(faults, relay_failure_retried);
    tcase_add_test(faults, hung_proxy_times_out);
    tcase_add_test(faults, detach_fails_pending);
    suite_add_tcase(s, faults);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
