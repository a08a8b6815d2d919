/*
 * Payment and timeouts end to end (SPEC §2 steps 5–7, §3, §4): the real seckilld
 * with the redis stock plugin, the redis_streams queue plugin and the alipay
 * payment plugin, against the stack's Redis (db 14) and MariaDB (sktest_payment)
 * and the Alipay gateway emulator (scripts/alipay-emulator.py), started here with
 * RSA-2048 keys made for the run by the openssl command line.
 *
 * The buyer confirms an order (one trade per order, one answer per key), pays at
 * the emulator, whose signed notify makes the order paid exactly once; notifies
 * that are forged, for someone else, for another amount or malformed change
 * nothing; unpaid orders close after order_timeout (4 s here) and give their unit
 * back exactly once, also with two daemons on the same stores; a payment that
 * arrives after the close is refunded once, one whose notify never comes is found
 * by the query the close starts with; an unreachable gateway makes confirm answer
 * 503 at once and holds back the close of orders whose trade may exist.
 *
 * Forged notifies are signed here with the gateway's private key (`openssl dgst
 * -sha256 -sign`) over Alipay's string to sign (sorted, sign and sign_type left
 * out, raw values) and form-encoded with curl_easy_escape.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <mysql.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seckill/plugin.h>

#include "core/auth/jwt.h"
#include "core/order_no.h"
#include "core/timeutil.h"
#include "support.h"

#define DB_NAME            "sktest_payment"
#define REDIS_DB           14
#define APP_ID             "2021000000000001"
#define PYTHON             "/usr/bin/python3"
#define ORDER_TIMEOUT_YAML "order_timeout: 4s\n" /* appended to the daemons' config */
#define PRICE_CENTS        990
#define PRICE_YUAN         "9.90"

/* The keys of the run: the app's pair (the plugin signs, the emulator verifies) and
 * the gateway's pair (the emulator signs, the plugin verifies). */
static struct {
    char dir[64];
    char app_priv[128], app_pub[128];
    char ali_priv[128], ali_pub[128];
} K;

/* The emulator: one data folder and one port for the whole run, so that a restart
 * (the gateway-down case) finds its trades again at the same address. */
static struct {
    pid_t pid;
    int port;
    char dir[64];
    char data[128];
    char log[128];
    char base[64];
} E;

static struct sk_test_daemon d1, d2;
static char plugins_yaml[4096];
static char plugins_yaml2[4096]; /* d2: the same, with a notify_url nobody serves */

/* --- small tools --------------------------------------------------------------- */

static int sh(const char *fmt, ...) SK_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The whole file as a malloc'd string ("" when it is missing). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1), chunk[4096];
    size_t len = 0, n;
    ck_assert_ptr_nonnull(buf);
    if (f == NULL)
        return buf;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        char *p = realloc(buf, len + n + 1);
        ck_assert_ptr_nonnull(p);
        buf = p;
        memcpy(buf + len, chunk, n);
        len += n;
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* How often `needle` occurs in `hay`. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void make_keys(void)
{
    snprintf(K.dir, sizeof(K.dir), "/tmp/sktest-payment-keys-XXXXXX");
    ck_assert_msg(mkdtemp(K.dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(K.app_priv, sizeof(K.app_priv), "%s/app_private.pem", K.dir);
    snprintf(K.app_pub, sizeof(K.app_pub), "%s/app_public.pem", K.dir);
    snprintf(K.ali_priv, sizeof(K.ali_priv), "%s/alipay_private.pem", K.dir);
    snprintf(K.ali_pub, sizeof(K.ali_pub), "%s/alipay_public.pem", K.dir);
    int rc = sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"
                " && openssl rsa -in %s -pubout -out %s 2>/dev/null"
                " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"
                " && openssl rsa -in %s -pubout -out %s 2>/dev/null",
                K.app_priv, K.app_priv, K.app_pub, K.ali_priv, K.ali_priv, K.ali_pub);
    ck_assert_msg(rc == 0, "cannot generate RSA keys with the openssl command line (exit %d)", rc);
}

/* --- the emulator -------------------------------------------------------------- */

/* Start the emulator on E.port with E.data (both kept over restarts) and wait for
 * its ready line, which it prints once it listens. */
static void emu_start(void)
{
    char script[512], port[16];
    long from = file_size(E.log);
    snprintf(script, sizeof(script), "%s/scripts/alipay-emulator.py", SK_TEST_SRCDIR);
    snprintf(port, sizeof(port), "%d", E.port);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(E.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        close(fd);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the suite */
        execl(PYTHON, PYTHON, script, "--port", port, "--data", E.data, "--app-id", APP_ID, "--app-public-key",
              K.app_pub, "--alipay-private-key", K.ali_priv, "--notify-retry-ms", "500", (char *)NULL);
        _exit(127);
    }
    E.pid = pid;
    char want[64];
    snprintf(want, sizeof(want), "listening on 127.0.0.1:%d\n", E.port);
    for (int i = 0; i < 750; i++) { /* 15 s */
        char *log = read_file(E.log);
        int ready = (long)strlen(log) > from && strstr(log + from, want) != NULL;
        int st;
        if (!ready && waitpid(pid, &st, WNOHANG) == pid) {
            E.pid = 0;
            fprintf(stderr, "---- emulator log ----\n%s\n", log + from);
            free(log);
            ck_abort_msg("the alipay emulator exited at start (status %d)", st);
        }
        free(log);
        if (ready)
            return;
        sk_test_sleep_ms(20);
    }
    ck_abort_msg("the alipay emulator did not print its ready line within 15 s (log %s)", E.log);
}

static void emu_stop(void)
{
    if (E.pid <= 0)
        return;
    kill(E.pid, SIGTERM);
    for (int i = 0; i < 250; i++) { /* 5 s */
        if (waitpid(E.pid, NULL, WNOHANG) == E.pid) {
            E.pid = 0;
            return;
        }
        sk_test_sleep_ms(20);
    }
    kill(E.pid, SIGKILL);
    waitpid(E.pid, NULL, 0);
    E.pid = 0;
}

/* A test control of the emulator (form parameters); its JSON answer (owned by the
 * caller) after checking the status. */
static json_t *emu_control(const char *what, const char *form, long want)
{
    char url[256];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/emulator/%s", E.base, what);
    long st = sk_test_http("POST", url, NULL, form, NULL, &r);
    ck_assert_msg(st == want, "POST /emulator/%s %s: %ld %s", what, form, st, r.body ? r.body : "");
    json_t *j = r.json ? json_incref(r.json) : NULL;
    sk_test_resp_free(&r);
    return j;
}

/* GET /emulator/<path>; the JSON answer (owned), NULL with *status 404. */
static json_t *emu_get(const char *path, long *status)
{
    char url[256];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/emulator/%s", E.base, path);
    *status = sk_test_http("GET", url, NULL, NULL, NULL, &r);
    json_t *j = *status == 200 && r.json ? json_incref(r.json) : NULL;
    sk_test_resp_free(&r);
    return j;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* The emulator's trade (owned); fails when it has none. */
static json_t *emu_trade(const char *order_no)
{
    char path[128];
    long st;
    snprintf(path, sizeof(path), "trades/%s", order_no);
    json_t *t = emu_get(path, &st);
    ck_assert_msg(st == 200 && t != NULL, "the emulator has no trade %s (HTTP %ld)", order_no, st);
    return t;
}

/* --- the daemon ---------------------------------------------------------------- */

/* Give d its folder and ports before the config is written: the payment plugin's
 * notify_url names the daemon's own client port. */
static void daemon_prepare(struct sk_test_daemon *d, const char *tag)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/sktest-%s-%s-XXXXXX", DB_NAME, tag);
    ck_assert_msg(mkdtemp(d->dir) != NULL, "mkdtemp: %s", strerror(errno));
    d->client_port = sk_test_free_port();
    d->admin_port = sk_test_free_port();
    snprintf(d->config_path, sizeof(d->config_path), "%s/seckilld.yaml", d->dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/seckilld.log", d->dir);
    snprintf(d->client_url, sizeof(d->client_url), "http://127.0.0.1:%d", d->client_port);
    snprintf(d->admin_url, sizeof(d->admin_url), "http://127.0.0.1:%d", d->admin_port);
    d->plugins_yaml = plugins_yaml;
}

static long admin(const char *method, const char *path, const char *body, struct sk_test_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", d1.admin_url, path);
    return sk_test_http(method, url, SK_TEST_ADMIN_TOKEN, body, NULL, r);
}

static void token(uint64_t user, char *out, size_t len)
{
    ck_assert_int_eq(
        sk_jwt_mint(SK_TEST_JWT_SECRET, strlen(SK_TEST_JWT_SECRET), user, sk_now_ms() / 1000 + 3600, out, len), 0);
}

/* A buyer's call to daemon d (body may be NULL, key NULL for no Idempotency-Key). */
static long client(const struct sk_test_daemon *d, uint64_t user, const char *method, const char *path,
                   const char *body, const char *key, struct sk_test_resp *r)
{
    char url[512], tok[512], hdr[256];
    snprintf(url, sizeof(url), "%s%s", d->client_url, path);
    token(user, tok, sizeof(tok));
    if (key)
        snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
    return sk_test_http(method, url, tok, body, key ? hdr : NULL, r);
}

/* An activity on sale now with one item of `stock` units at PRICE_CENTS; waits
 * until buyers of d1 (and d2 when running) see it. */
static void on_sale(int64_t stock, json_int_t *activity, json_int_t *item)
{
    char s[SK_TIME_TEXT_LEN], e[SK_TIME_TEXT_LEN], body[1024], path[160];
    struct sk_test_resp r;
    int64_t now = sk_now_ms();
    sk_time_format(now - 1000, s);
    sk_time_format(now + 3600 * 1000, e);
    snprintf(
        body, sizeof(body),
        "{\"name\":\"payment\",\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"items\":[{\"sku\":\"P\",\"title\":\"Phone\","
        "\"price_cents\":1990,\"seckill_price_cents\":%d,\"stock\":%lld,\"per_user_limit\":1}]}",
        s, e, PRICE_CENTS, (long long)stock);
    ck_assert_int_eq(admin("POST", "/admin/v1/activities", body, &r), 201);
    *activity = json_integer_value(json_object_get(r.json, "id"));
    *item = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    sk_test_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/v1/activities/%lld/publish", (long long)*activity);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    sk_test_resp_free(&r);
    const struct sk_test_daemon *ds[2] = {&d1, &d2};
    for (int k = 0; k < 2; k++) {
        if (ds[k]->pid <= 0)
            continue;
        snprintf(path, sizeof(path), "%s/api/v1/items/%lld", ds[k]->client_url, (long long)*item);
        long st = 0;
        for (int i = 0; i < 100 && st != 200; i++) {
            st = sk_test_http("GET", path, NULL, NULL, NULL, &r);
            sk_test_resp_free(&r);
            if (st != 200)
                sk_test_sleep_ms(100);
        }
        ck_assert_msg(st == 200, "item %lld never went on sale", (long long)*item);
    }
}

/* One reservation at d: the status; the order number and deadline when 200. */
static long reserve_at(const struct sk_test_daemon *d, uint64_t user, json_int_t activity, json_int_t item,
                       char *order_no, int64_t *expires_ms)
{
    char body[128];
    struct sk_test_resp r;
    snprintf(body, sizeof(body), "{\"activity_id\":%lld,\"item_id\":%lld}", (long long)activity, (long long)item);
    long st = client(d, user, "POST", "/api/v1/seckill", body, NULL, &r);
    if (st == 200) {
        if (order_no)
            snprintf(order_no, 64, "%s", jstr(r.json, "order_no"));
        if (expires_ms)
            ck_assert_int_eq(sk_time_parse(jstr(r.json, "expires_at"), expires_ms), SK_OK);
    }
    sk_test_resp_free(&r);
    return st;
}

static void reserve_ok(uint64_t user, json_int_t activity, json_int_t item, char *order_no, int64_t *expires_ms)
{
    ck_assert_int_eq(reserve_at(&d1, user, activity, item, order_no, expires_ms), 200);
}

/* The buyer's view of the order through d: the status text ("" if not 200). */
static void order_status(const struct sk_test_daemon *d, uint64_t user, const char *order_no, char *status, size_t len,
                         struct sk_test_resp *keep)
{
    char path[160];
    struct sk_test_resp r;
    snprintf(path, sizeof(path), "/api/v1/orders/%s", order_no);
    long st = client(d, user, "GET", path, NULL, NULL, &r);
    snprintf(status, len, "%s", st == 200 ? jstr(r.json, "status") : "");
    if (keep)
        *keep = r;
    else
        sk_test_resp_free(&r);
}

/* Wait (at most ms) until the buyer sees the order in `want`. */
static void wait_status(const struct sk_test_daemon *d, uint64_t user, const char *order_no, const char *want, int ms)
{
    char have[32] = "";
    for (int waited = 0; waited <= ms; waited += 100) {
        order_status(d, user, order_no, have, sizeof(have), NULL);
        if (strcmp(have, want) == 0)
            return;
        sk_test_sleep_ms(100);
    }
    sk_test_daemon_dump_log(d);
    ck_abort_msg("order %s is \"%s\" after %d ms, expected \"%s\"", order_no, have, ms, want);
}

static long confirm(const struct sk_test_daemon *d, uint64_t user, const char *order_no, const char *key,
                    struct sk_test_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/orders/%s/confirm", order_no);
    return client(d, user, "POST", path, NULL, key, r);
}

/* Confirm and expect 200 paying with a QR code; copies the QR code. */
static void confirm_ok(const struct sk_test_daemon *d, uint64_t user, const char *order_no, const char *key, char *qr,
                       size_t len)
{
    struct sk_test_resp r;
    long st = confirm(d, user, order_no, key, &r);
    if (st != 200)
        sk_test_daemon_dump_log(d);
    ck_assert_msg(st == 200, "confirm %s: %ld %s", order_no, st, r.body ? r.body : "");
    ck_assert_str_eq(jstr(r.json, "status"), "paying");
    ck_assert_str_eq(jstr(r.json, "order_no"), order_no);
    ck_assert_msg(strncmp(jstr(r.json, "qr_code"), "https://qr.alipay.com/", 22) == 0, "qr_code: %s", r.body);
    if (qr)
        snprintf(qr, len, "%s", jstr(r.json, "qr_code"));
    sk_test_resp_free(&r);
}

/* --- MariaDB and Redis --------------------------------------------------------- */

static MYSQL *db(void)
{
    MYSQL *m = mysql_init(NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(mysql_real_connect(m, sk_test_mysql_host(), sk_test_mysql_user(), sk_test_mysql_password(), DB_NAME,
                                     (unsigned)sk_test_mysql_port(), NULL, 0) != NULL,
                  "MariaDB: %s", mysql_error(m));
    return m;
}

/* The first column of the first row as text into out ("" for none or NULL). */
static void text(char *out, size_t len, const char *fmt, ...) SK_PRINTF(3, 4);
static void text(char *out, size_t len, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    MYSQL *m = db();
    ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
    MYSQL_RES *res = mysql_store_result(m);
    ck_assert_ptr_nonnull(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    snprintf(out, len, "%s", row && row[0] ? row[0] : "");
    mysql_free_result(res);
    mysql_close(m);
}

static long long scalar(const char *fmt, ...) SK_PRINTF(1, 2);
static long long scalar(const char *fmt, ...)
{
    char sql[1024], v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    text(v, sizeof(v), "%s", sql);
    return v[0] ? atoll(v) : -1;
}

/* Everything about one order that a refused notify must leave as it is. */
static void snapshot(const char *order_no, char *out, size_t len)
{
    text(out, len,
         "SELECT CONCAT_WS('|', o.status, o.updated_at, IFNULL(o.paid_at, '-'), IFNULL(o.closed_at, '-'), "
         "o.unit_returned, IFNULL(p.status, '-'), IFNULL(p.trade_no, '-'), IFNULL(p.updated_at, '-'), "
         "IFNULL(p.notified_at, '-'), IFNULL(p.paid_at, '-'), IFNULL(MD5(p.notify_raw), '-'), "
         "(SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM refunds)) "
         "FROM orders o LEFT JOIN payments p ON p.order_no = o.order_no WHERE o.order_no = '%s'",
         order_no);
    ck_assert_msg(out[0] != '\0', "order %s is not in MariaDB", order_no);
}

/* A Redis integer (GET of a counter, HLEN…) in db REDIS_DB; -1 for nil. */
static long long redis_int(const char *fmt, ...)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(sk_test_redis_host(), sk_test_redis_port(), tv);
    ck_assert_msg(c != NULL && !c->err, "Redis not reachable");
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    va_list ap;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static long long stock_left(json_int_t item)
{
    return redis_int("GET sk:{item:%lld}:stock", (long long)item);
}

/* seckill_units_returned_total of daemon d (units its closer gave back). */
static long long units_returned(const struct sk_test_daemon *d)
{
    char url[160];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/metrics", d->client_url);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    const char *p = strstr(r.body, "\nseckill_units_returned_total ");
    long long v = p ? atoll(p + strlen("\nseckill_units_returned_total ")) : -1;
    sk_test_resp_free(&r);
    ck_assert_msg(v >= 0, "no seckill_units_returned_total in %s/metrics", d->client_url);
    return v;
}

/* --- notifies as the gateway would send them (or a forger) ---------------------- */

struct field {
    const char *name;
    char value[160];
};

static int field_cmp(const void *a, const void *b)
{
    return strcmp(((const struct field *)a)->name, ((const struct field *)b)->name);
}

/* "yyyy-MM-dd HH:mm:ss" in China time (UTC+8), Alipay's clock. */
static void china_now(char *out, size_t len)
{
    time_t t = time(NULL) + 8 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* RSA2 (SHA256withRSA, base64) of text with the private key at key_path, made by
 * the openssl command line. */
static void rsa2_sign(const char *key_path, const char *content, char *sig, size_t len)
{
    char in[160], bin[160], b64[160];
    snprintf(in, sizeof(in), "%s/content.txt", K.dir);
    snprintf(bin, sizeof(bin), "%s/sig.bin", K.dir);
    snprintf(b64, sizeof(b64), "%s/sig.b64", K.dir);
    FILE *f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(content, 1, strlen(content), f), strlen(content));
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(
        sh("openssl dgst -sha256 -sign %s -out %s %s && openssl base64 -A -in %s -out %s", key_path, bin, in, bin, b64),
        0);
    char *s = read_file(b64);
    s[strcspn(s, "\r\n")] = '\0';
    ck_assert_msg(strlen(s) > 300 && strlen(s) < len, "odd signature: %s", s);
    snprintf(sig, len, "%s", s);
    free(s);
}

/* A TRADE_SUCCESS notify for order_no, signed with key_path over Alipay's string to
 * sign and form-encoded: the body (malloc'd). */
static char *notify_body(const char *key_path, const char *app_id, const char *order_no, const char *trade_no,
                         const char *amount)
{
    char now[32], content[4096], sig[1024];
    struct field f[] = {
        {"notify_time", ""},
        {"notify_type", "trade_status_sync"},
        {"notify_id", ""},
        {"app_id", ""},
        {"auth_app_id", ""},
        {"charset", "utf-8"},
        {"version", "1.0"},
        {"sign_type", "RSA2"},
        {"trade_no", ""},
        {"out_trade_no", ""},
        {"trade_status", "TRADE_SUCCESS"},
        {"total_amount", ""},
        {"receipt_amount", ""},
        {"buyer_id", "2088102177846875"},
        {"buyer_logon_id", "buy***@sandbox.com"},
        {"seller_id", "2088102177846880"},
        {"gmt_create", ""},
        {"gmt_payment", ""},
        {"subject", "Phone"},
        {"fund_bill_list", ""},
    };
    size_t n = sizeof(f) / sizeof(f[0]);
    china_now(now, sizeof(now));
    for (size_t i = 0; i < n; i++) {
        const char *k = f[i].name;
        if (strcmp(k, "notify_time") == 0 || strcmp(k, "gmt_create") == 0 || strcmp(k, "gmt_payment") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "%s", now);
        else if (strcmp(k, "notify_id") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "forged%lld%d", (long long)sk_now_ms(), rand() % 100000);
        else if (strcmp(k, "app_id") == 0 || strcmp(k, "auth_app_id") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "%s", app_id);
        else if (strcmp(k, "trade_no") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "%s", trade_no);
        else if (strcmp(k, "out_trade_no") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "%s", order_no);
        else if (strcmp(k, "total_amount") == 0 || strcmp(k, "receipt_amount") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "%s", amount);
        else if (strcmp(k, "fund_bill_list") == 0)
            snprintf(f[i].value, sizeof(f[i].value), "[{\"amount\":\"%s\",\"fundChannel\":\"ALIPAYACCOUNT\"}]", amount);
    }
    qsort(f, n, sizeof(f[0]), field_cmp);
    size_t at = 0;
    content[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].name, "sign_type") == 0 || f[i].value[0] == '\0')
            continue;
        at += (size_t)snprintf(content + at, sizeof(content) - at, "%s%s=%s", at ? "&" : "", f[i].name, f[i].value);
        ck_assert_uint_lt(at, sizeof(content));
    }
    rsa2_sign(key_path, content, sig, sizeof(sig));
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char *body = calloc(1, 8192);
    ck_assert_ptr_nonnull(body);
    at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *name = i < n ? f[i].name : "sign", *value = i < n ? f[i].value : sig;
        char *e = curl_easy_escape(c, value, 0);
        ck_assert_ptr_nonnull(e);
        at += (size_t)snprintf(body + at, 8192 - at, "%s%s=%s", at ? "&" : "", name, e);
        curl_free(e);
        ck_assert_uint_lt(at, 8192);
    }
    curl_easy_cleanup(c);
    return body;
}

struct sink {
    char data[4096];
    size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *u)
{
    struct sink *s = u;
    size_t k = size * n;
    size_t room = sizeof(s->data) - 1 - s->len;
    memcpy(s->data + s->len, p, k < room ? k : room);
    s->len += k < room ? k : room;
    s->data[s->len] = '\0';
    return k;
}

/* POST body to d1's notify endpoint with content type ctype (NULL: none); the
 * answer's body into answer. Returns the HTTP status. */
static long post_notify(const char *body, const char *ctype, char *answer, size_t len)
{
    char url[160], hdr[160];
    struct sink s = {.len = 0};
    struct curl_slist *h = NULL;
    long status = 0;
    snprintf(url, sizeof(url), "%s/api/v1/pay/notify/alipay", d1.client_url);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    if (ctype) {
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
        h = curl_slist_append(h, hdr);
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    size_t k = s.len < len - 1 ? s.len : len - 1;
    memcpy(answer, s.data, k);
    answer[k] = '\0';
    return status;
}

#define FORM "application/x-www-form-urlencoded; charset=utf-8"

/* Requests sent all at once (libcurl multi): POSTs of body (NULL: empty) with the
 * headers given; each one's status and answer. */
struct par {
    char url[256];
    const char *body;
    struct curl_slist *hdrs; /* freed by parallel() */
    long status;
    struct sink out;
};

static void parallel(struct par *p, int n)
{
    CURLM *m = curl_multi_init();
    CURL *h[16];
    ck_assert_ptr_nonnull(m);
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        h[i] = curl_easy_init();
        ck_assert_ptr_nonnull(h[i]);
        p[i].out.len = 0;
        p[i].out.data[0] = '\0';
        p[i].hdrs = curl_slist_append(p[i].hdrs, "Expect:");
        curl_easy_setopt(h[i], CURLOPT_URL, p[i].url);
        curl_easy_setopt(h[i], CURLOPT_POST, 1L);
        curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, p[i].body ? p[i].body : "");
        curl_easy_setopt(h[i], CURLOPT_POSTFIELDSIZE, (long)(p[i].body ? strlen(p[i].body) : 0));
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, p[i].hdrs);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 15000L);
        curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &p[i].out);
        curl_multi_add_handle(m, h[i]);
    }
    int running = 1;
    for (int rounds = 0; running && rounds < 400; rounds++) { /* at most ~20 s */
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    for (int i = 0; i < n; i++) {
        p[i].status = 0;
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &p[i].status);
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        curl_slist_free_all(p[i].hdrs);
        p[i].hdrs = NULL;
    }
    curl_multi_cleanup(m);
}

/* A confirm of order_no by user with key, for parallel(). */
static void par_confirm(struct par *p, const struct sk_test_daemon *d, uint64_t user, const char *order_no,
                        const char *key)
{
    char tok[512], hdr[600];
    memset(p, 0, sizeof(*p));
    snprintf(p->url, sizeof(p->url), "%s/api/v1/orders/%s/confirm", d->client_url, order_no);
    token(user, tok, sizeof(tok));
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
    p->hdrs = curl_slist_append(NULL, hdr);
    snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
    p->hdrs = curl_slist_append(p->hdrs, hdr);
}

/* --- fixture ------------------------------------------------------------------- */

static void setup(void)
{
    make_keys();
    snprintf(E.dir, sizeof(E.dir), "/tmp/sktest-payment-emu-XXXXXX");
    ck_assert_msg(mkdtemp(E.dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(E.data, sizeof(E.data), "%s/data", E.dir);
    snprintf(E.log, sizeof(E.log), "%s/emulator.log", E.dir);
    E.port = sk_test_free_port();
    snprintf(E.base, sizeof(E.base), "http://127.0.0.1:%d", E.port);
    emu_start();

    daemon_prepare(&d1, "d1");
    snprintf(plugins_yaml, sizeof(plugins_yaml),
             "  queue:\n    name: redis_streams\n    config:\n      host: %s\n      port: %d\n      db: %d\n"
             "      claim_idle_ms: 1000\n"
             "  payment:\n    name: alipay\n    config:\n      gateway_url: %s/gateway.do\n"
             "      app_id: \"%s\"\n      app_private_key_file: %s\n      alipay_public_key_file: %s\n"
             "      notify_url: %s/api/v1/pay/notify/alipay\n      method: precreate\n      timeout_ms: 3000\n",
             sk_test_redis_host(), sk_test_redis_port(), REDIS_DB, E.base, APP_ID, K.app_priv, K.ali_pub,
             d1.client_url);
    sk_test_daemon_start(&d1, DB_NAME, REDIS_DB, ORDER_TIMEOUT_YAML, 0);
}

static void teardown(void)
{
    sk_test_daemon_stop(&d2, SIGTERM);
    sk_test_daemon_stop(&d1, SIGTERM);
    emu_stop();
    sh("rm -rf %s %s", K.dir, E.dir);
}

/* Every case starts with the emulator up (a failed gateway-down case may have left
 * it stopped). */
static void emu_ensure(void)
{
    if (E.pid <= 0)
        emu_start();
}

/* The second daemon: the same stores and plugins, other ports; its trades carry a
 * notify_url where nothing listens (a gateway's notifies that never arrive). */
static void d2_ensure(void)
{
    if (d2.pid > 0)
        return;
    daemon_prepare(&d2, "d2");
    int dead = sk_test_free_port();
    char from[128], to[128];
    snprintf(from, sizeof(from), "notify_url: %s/", d1.client_url);
    snprintf(to, sizeof(to), "notify_url: http://127.0.0.1:%d/", dead);
    const char *at = strstr(plugins_yaml, from);
    ck_assert_ptr_nonnull(at);
    snprintf(plugins_yaml2, sizeof(plugins_yaml2), "%.*s%s%s", (int)(at - plugins_yaml), plugins_yaml, to,
             at + strlen(from));
    d2.plugins_yaml = plugins_yaml2;
    sk_test_daemon_start(&d2, DB_NAME, REDIS_DB, ORDER_TIMEOUT_YAML, 1);
}

/* --- cases --------------------------------------------------------------------- */

/* Confirm: 200 paying with a QR code; the same key gets the same answer; another
 * key gets the same trade; no key 400; someone else's or an unknown order 404. One
 * payment row, one trade at the gateway. */
START_TEST(confirm_answers_and_is_idempotent)
{
    json_int_t activity, item;
    char no[64], qr[512], other[SK_ORDER_NO_MAX + 1], st[32], path[160];
    struct sk_test_resp r1, r2, r;
    emu_ensure();
    on_sale(5, &activity, &item);
    reserve_ok(1001, activity, item, no, NULL);
    wait_status(&d1, 1001, no, "created", 3000);

    ck_assert_int_eq(confirm(&d1, 1001, no, "key-1001-a", &r1), 200);
    ck_assert_str_eq(jstr(r1.json, "status"), "paying");
    ck_assert_str_eq(jstr(r1.json, "order_no"), no);
    snprintf(qr, sizeof(qr), "%s", jstr(r1.json, "qr_code"));
    ck_assert_msg(strncmp(qr, "https://qr.alipay.com/", 22) == 0, "qr_code: %s", r1.body);
    /* the same key: the same answer */
    ck_assert_int_eq(confirm(&d1, 1001, no, "key-1001-a", &r2), 200);
    ck_assert_msg(json_equal(r1.json, r2.json), "%s <> %s", r1.body, r2.body);
    sk_test_resp_free(&r2);
    sk_test_resp_free(&r1);
    /* another key: still the one trade */
    ck_assert_int_eq(confirm(&d1, 1001, no, "key-1001-b", &r), 200);
    ck_assert_str_eq(jstr(r.json, "qr_code"), qr);
    ck_assert_str_eq(jstr(r.json, "status"), "paying");
    sk_test_resp_free(&r);
    /* no key */
    ck_assert_int_eq(confirm(&d1, 1001, no, NULL, &r), 400);
    ck_assert_str_eq(sk_test_err_code(&r), "bad_request");
    sk_test_resp_free(&r);
    /* another buyer */
    ck_assert_int_eq(confirm(&d1, 1002, no, "key-1002-a", &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/orders/%s", no);
    ck_assert_int_eq(client(&d1, 1002, "GET", path, NULL, NULL, &r), 404);
    sk_test_resp_free(&r);
    /* unknown orders: well-formed, and not an order number at all */
    ck_assert_int_eq(sk_order_no_new(sk_now_ms(), (uint64_t)item, other), SK_OK);
    ck_assert_int_eq(confirm(&d1, 1001, other, "key-1001-c", &r), 404);
    ck_assert_str_eq(sk_test_err_code(&r), "not_found");
    sk_test_resp_free(&r);
    ck_assert_int_eq(confirm(&d1, 1001, "nonsense", "key-1001-d", &r), 404);
    sk_test_resp_free(&r);

    /* the buyer sees paying; MariaDB has one payment with the QR code (its key is
     * stored as the buyer's own: "<user>:<key>"); the gateway has one trade of the
     * order's amount */
    order_status(&d1, 1001, no, st, sizeof(st), NULL);
    ck_assert_str_eq(st, "paying");
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'created' AND "
                            "gateway = 'alipay' AND idempotency_key = '1001:key-1001-a' AND amount_cents = %d AND "
                            "qr_code = '%s'",
                            no, PRICE_CENTS, qr),
                     1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", other), 0);
    json_t *t = emu_trade(no);
    ck_assert_str_eq(jstr(t, "status"), "WAIT_BUYER_PAY");
    ck_assert_str_eq(jstr(t, "total_amount"), PRICE_YUAN);
    ck_assert_str_eq(jstr(t, "qr_code"), qr);
    json_decref(t);
    long est;
    snprintf(path, sizeof(path), "trades/%s", other);
    ck_assert_ptr_null(emu_get(path, &est));
    ck_assert_int_eq(est, 404);
}
END_TEST

/* A confirm that arrives before the order writer has the reservation in MariaDB:
 * the daemon answers 409 conflict ("still being recorded; retry") while the order is
 * only in Redis, and 200 once it is there (a retry with the same key). A fast
 * writer may already have it: then the first answer is 200. */
START_TEST(confirm_before_the_order_is_in_mariadb)
{
    json_int_t activity, item;
    char no[64];
    struct sk_test_resp r;
    emu_ensure();
    on_sale(5, &activity, &item);
    reserve_ok(1101, activity, item, no, NULL);
    long first = confirm(&d1, 1101, no, "key-1101", &r);
    int in_db = (int)scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s'", no);
    ck_assert_msg(first == 200 || (first == 409 && strcmp(sk_test_err_code(&r), "conflict") == 0),
                  "first confirm: %ld %s", first, r.body);
    sk_test_resp_free(&r);
    long st = first;
    int tries = 0;
    for (; st == 409 && tries < 50; tries++) {
        sk_test_sleep_ms(100);
        st = confirm(&d1, 1101, no, "key-1101", &r);
        sk_test_resp_free(&r);
    }
    ck_assert_int_eq(st, 200);
    fprintf(stderr,
            "confirm_before_the_order_is_in_mariadb: first answer %ld (order in MariaDB right after: %d), "
            "200 after %d retries\n",
            first, in_db, tries);
    wait_status(&d1, 1101, no, "paying", 2000);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no), 1);
}
END_TEST

/* Confirms of one order at the same moment, with one key and with several: one
 * trade, one payment row; each answer is the trade (200) or "in progress" (409).
 * A key already used for one order, sent with another buyer's order, never
 * answers the first order's trade. */
START_TEST(concurrent_confirms_make_one_trade)
{
    enum { N = 8 };
    json_int_t activity, item;
    char no[64], no2[64], qr[512] = "", key[32];
    struct par p[N];
    struct sk_test_resp r;
    emu_ensure();
    on_sale(5, &activity, &item);
    reserve_ok(1301, activity, item, no, NULL);
    reserve_ok(1302, activity, item, no2, NULL);
    wait_status(&d1, 1301, no, "created", 3000);
    wait_status(&d1, 1302, no2, "created", 3000);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), i % 2 ? "key-1301-%d" : "key-1301", i);
        par_confirm(&p[i], &d1, 1301, no, key);
    }
    parallel(p, N);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = json_loads(p[i].out.data, 0, NULL);
        if (p[i].status == 200) {
            ok++;
            ck_assert_str_eq(jstr(j, "status"), "paying");
            if (qr[0] == '\0')
                snprintf(qr, sizeof(qr), "%s", jstr(j, "qr_code"));
            ck_assert_str_eq(jstr(j, "qr_code"), qr);
        } else {
            ck_assert_msg(p[i].status == 409, "concurrent confirm %d: %ld %s", i, p[i].status, p[i].out.data);
            ck_assert_str_eq(jstr(json_object_get(j, "error"), "code"), "conflict");
            busy++;
        }
        json_decref(j);
    }
    ck_assert_int_ge(ok, 1);
    fprintf(stderr, "concurrent_confirms_make_one_trade: %d answered 200, %d answered 409 in progress\n", ok, busy);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no), 1);
    /* afterwards every one of those keys gets the trade */
    char got[512];
    confirm_ok(&d1, 1301, no, "key-1301", got, sizeof(got));
    ck_assert_str_eq(got, qr);
    confirm_ok(&d1, 1301, no, "key-1301-3", got, sizeof(got));
    ck_assert_str_eq(got, qr);
    json_t *t = emu_trade(no);
    ck_assert_str_eq(jstr(t, "qr_code"), qr);
    json_decref(t);

    long st = confirm(&d1, 1302, no2, "key-1301", &r);
    ck_assert_msg(st == 409 || (st == 200 && strcmp(jstr(r.json, "order_no"), no2) == 0 &&
                                strcmp(jstr(r.json, "qr_code"), qr) != 0),
                  "another buyer's order with a used key: %ld %s", st, r.body);
    fprintf(stderr, "concurrent_confirms_make_one_trade: a used key on another order answers %ld %s\n", st,
            sk_test_err_code(&r));
    sk_test_resp_free(&r);
    if (st == 409)
        ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no2), 0);
}
END_TEST

/* SPEC §4: GET /api/v1/orders/{no} gives "payment info once confirmed". */
START_TEST(order_shows_payment_info_once_confirmed)
{
    json_int_t activity, item;
    char no[64], qr[512], st[32];
    struct sk_test_resp r;
    emu_ensure();
    on_sale(5, &activity, &item);
    reserve_ok(1201, activity, item, no, NULL);
    wait_status(&d1, 1201, no, "created", 3000);
    confirm_ok(&d1, 1201, no, "key-1201", qr, sizeof(qr));
    order_status(&d1, 1201, no, st, sizeof(st), &r);
    int has = strcmp(jstr(r.json, "qr_code"), qr) == 0 || json_object_get(r.json, "payment") != NULL;
    char body[1024];
    snprintf(body, sizeof(body), "%s", r.body ? r.body : "");
    sk_test_resp_free(&r);
    ck_assert_str_eq(st, "paying");
    ck_assert_msg(has, "GET /api/v1/orders/%s of a confirmed order has no payment info: %s", no, body);
}
END_TEST

/* The buyer pays at the gateway: its signed notify makes the order paid, with the
 * gateway's trade number; the same notify again changes nothing and is answered
 * success each time. */
START_TEST(pay_then_replayed_notify)
{
    json_int_t activity, item;
    char no[64], qr[512], form[128], st[32], trade_no[80];
    struct sk_test_resp r;
    emu_ensure();
    on_sale(3, &activity, &item);
    reserve_ok(2001, activity, item, no, NULL);
    wait_status(&d1, 2001, no, "created", 3000);
    confirm_ok(&d1, 2001, no, "key-2001", qr, sizeof(qr));
    snprintf(form, sizeof(form), "out_trade_no=%s", no);
    json_decref(emu_control("scan", form, 200));
    json_t *paid = emu_control("pay", form, 200);
    snprintf(trade_no, sizeof(trade_no), "%s", jstr(paid, "trade_no"));
    ck_assert_str_eq(jstr(paid, "status"), "TRADE_SUCCESS");
    ck_assert_uint_gt(strlen(trade_no), 10);
    json_decref(paid);

    wait_status(&d1, 2001, no, "paid", 5000);
    order_status(&d1, 2001, no, st, sizeof(st), &r);
    int64_t paid_at = 0;
    ck_assert_msg(sk_time_parse(jstr(r.json, "paid_at"), &paid_at) == SK_OK, "no paid_at: %s", r.body);
    ck_assert_int_le(llabs(paid_at - sk_now_ms()), 10000);
    sk_test_resp_free(&r);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'paid' AND "
                            "trade_no = '%s' AND paid_at IS NOT NULL AND notify_raw LIKE '%%TRADE_SUCCESS%%'",
                            no, trade_no),
                     1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'paid' AND "
                            "paid_at IS NOT NULL AND closed_at IS NULL",
                            no),
                     1);
    ck_assert_int_eq(stock_left(item), 2);

    /* the daemon answered the notify `success` (so the gateway stops sending it) */
    char path[160];
    long est;
    snprintf(path, sizeof(path), "notifies?out_trade_no=%s", no);
    json_t *log = emu_get(path, &est);
    ck_assert_int_eq(est, 200);
    ck_assert_uint_ge(json_array_size(log), 1);
    json_t *first = json_array_get(log, 0);
    ck_assert_str_eq(jstr(first, "trade_status"), "TRADE_SUCCESS");
    ck_assert_str_eq(jstr(first, "body"), "success");
    ck_assert_int_eq(json_integer_value(json_object_get(first, "status_code")), 200);
    ck_assert(json_is_true(json_object_get(first, "ok")));
    size_t attempts = json_array_size(log);
    json_decref(log);
    char pay_paid_at[64];
    text(pay_paid_at, sizeof(pay_paid_at), "SELECT paid_at FROM payments WHERE order_no = '%s'", no);

    /* the same notify, byte for byte, once more */
    char b_order[512], a_order[512];
    text(b_order, sizeof(b_order),
         "SELECT CONCAT_WS('|', status, updated_at, paid_at, unit_returned, amount_cents) FROM orders "
         "WHERE order_no = '%s'",
         no);
    json_t *again = emu_control("notify-again", form, 200);
    ck_assert_str_eq(jstr(again, "body"), "success");
    ck_assert_int_eq(json_integer_value(json_object_get(again, "status_code")), 200);
    ck_assert(json_is_true(json_object_get(again, "replay")));
    json_decref(again);
    /* and four more times at once */
    struct par p[4];
    for (int i = 0; i < 4; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        snprintf(p[i].url, sizeof(p[i].url), "%s/emulator/notify-again", E.base);
        p[i].body = form;
        p[i].hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    }
    parallel(p, 4);
    for (int i = 0; i < 4; i++) {
        json_t *j = json_loads(p[i].out.data, 0, NULL);
        ck_assert_msg(p[i].status == 200 && strcmp(jstr(j, "body"), "success") == 0, "replay %d: %ld %s", i,
                      p[i].status, p[i].out.data);
        json_decref(j);
    }
    sk_test_sleep_ms(300);
    /* the order does not move; the one payment keeps its status, trade and time
     * (notified_at records the replay) */
    text(a_order, sizeof(a_order),
         "SELECT CONCAT_WS('|', status, updated_at, paid_at, unit_returned, amount_cents) FROM orders "
         "WHERE order_no = '%s'",
         no);
    ck_assert_str_eq(a_order, b_order);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'paid' AND "
                            "trade_no = '%s' AND paid_at = '%s'",
                            no, trade_no, pay_paid_at),
                     1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no = '%s'", no), 0);
    ck_assert_int_eq(stock_left(item), 2);
    log = emu_get(path, &est);
    ck_assert_uint_eq(json_array_size(log), attempts + 5);
    json_decref(log);
    /* a paid order cannot be confirmed again */
    ck_assert_int_eq(confirm(&d1, 2001, no, "key-2001", &r), 409);
    sk_test_resp_free(&r);
}
END_TEST

/* Notifies that must change nothing: each is answered `fail` (so a real gateway
 * would send it again) and MariaDB stays as it was. A correctly signed notify for
 * the same order (the last step) is accepted, so the forger's signatures are right
 * and each refusal is for the reason named. */
START_TEST(bad_notifies_change_nothing)
{
    json_int_t activity, item;
    char no[64], unknown[SK_ORDER_NO_MAX + 1], before[1024], after[1024], ans[256];
    emu_ensure();
    on_sale(3, &activity, &item);
    reserve_ok(3001, activity, item, no, NULL);
    ck_assert_int_eq(sk_order_no_new(sk_now_ms(), (uint64_t)item, unknown), SK_OK);
    /* signed before the order's clock matters: 4 s from the reservation */
    struct {
        const char *what;
        char *body;
        const char *ctype;
    } bad[] = {
        {"signed with the app's key, not the gateway's", notify_body(K.app_priv, APP_ID, no, "2026T1", PRICE_YUAN),
         FORM},
        {"another app id", notify_body(K.ali_priv, "2021000000000999", no, "2026T2", PRICE_YUAN), FORM},
        {"another amount", notify_body(K.ali_priv, APP_ID, no, "2026T3", "0.01"), FORM},
        {"an unknown order", notify_body(K.ali_priv, APP_ID, unknown, "2026T4", PRICE_YUAN), FORM},
        {"not an order number", notify_body(K.ali_priv, APP_ID, "no-such-order", "2026T5", PRICE_YUAN), FORM},
        {"malformed form", strdup("out_trade_no=%zz&&=&sign=%%%"), FORM},
        {"not a form", strdup("this is not a form at all"), FORM},
        {"empty body", strdup(""), FORM},
        {"JSON", strdup("{\"out_trade_no\":\"x\",\"trade_status\":\"TRADE_SUCCESS\"}"), "application/json"},
        {"no content type", NULL, NULL},
        {"the good body altered after signing", NULL, FORM},
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    char *good = notify_body(K.ali_priv, APP_ID, no, "2026T9", PRICE_YUAN);
    bad[nbad - 2].body = strdup(good);
    /* total_amount=9.90 becomes 9.99: the signature no longer covers the body */
    bad[nbad - 1].body = strdup(good);
    char *amt = strstr(bad[nbad - 1].body, "total_amount=9.90");
    ck_assert_ptr_nonnull(amt);
    amt[strlen("total_amount=9.9")] = '9';

    wait_status(&d1, 3001, no, "created", 3000);
    confirm_ok(&d1, 3001, no, "key-3001", NULL, 0);
    snapshot(no, before, sizeof(before));
    for (size_t i = 0; i < nbad; i++) {
        long st = post_notify(bad[i].body, bad[i].ctype, ans, sizeof(ans));
        ck_assert_msg(st > 0, "%s: no answer", bad[i].what);
        ck_assert_msg(strcmp(ans, "fail") == 0, "%s: answered %ld \"%s\", not \"fail\"", bad[i].what, st, ans);
        snapshot(no, after, sizeof(after));
        ck_assert_msg(strcmp(before, after) == 0, "%s changed the order:\n%s\n%s", bad[i].what, before, after);
        free(bad[i].body);
    }
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no IN ('%s', 'no-such-order')", unknown), 0);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no = '%s'", no), 0);
    ck_assert_int_eq(stock_left(item), 2);
    /* the same forger's signature over the right values is accepted */
    long st = post_notify(good, FORM, ans, sizeof(ans));
    ck_assert_msg(st == 200 && strcmp(ans, "success") == 0, "the good notify: %ld \"%s\"", st, ans);
    free(good);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'paid'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'paid' AND "
                            "trade_no = '2026T9'",
                            no),
                     1);
}
END_TEST

/* Unpaid orders close after order_timeout: the trade is closed at the gateway (a
 * scanned one by the daemon's close, an unscanned one by its own time_expire, the
 * daemon's close answering ACQ.TRADE_NOT_EXIST), the order is closed, the units go
 * back to Redis, and the next buyer gets one (the sold-out flag clears). */
START_TEST(timeout_closes_and_returns_the_unit)
{
    json_int_t activity, item;
    char a[64], b[64], form[128], st[32];
    int64_t exp_a, exp_b;
    struct sk_test_resp r;
    emu_ensure();
    on_sale(2, &activity, &item);
    reserve_ok(4001, activity, item, a, &exp_a);
    reserve_ok(4002, activity, item, b, &exp_b);
    ck_assert_int_eq(reserve_at(&d1, 4003, activity, item, NULL, NULL), 409); /* sold out */
    ck_assert_int_eq(stock_left(item), 0);
    wait_status(&d1, 4001, a, "created", 3000);
    wait_status(&d1, 4002, b, "created", 3000);
    confirm_ok(&d1, 4001, a, "key-4001", NULL, 0);
    confirm_ok(&d1, 4002, b, "key-4002", NULL, 0);
    snprintf(form, sizeof(form), "out_trade_no=%s", b);
    json_decref(emu_control("scan", form, 200));

    /* still open just before the deadline */
    ck_assert_int_gt(exp_a - sk_now_ms(), 300);
    order_status(&d1, 4001, a, st, sizeof(st), NULL);
    ck_assert_str_eq(st, "paying");

    int64_t limit = (exp_a > exp_b ? exp_a : exp_b) + 5000;
    wait_status(&d1, 4001, a, "closed", (int)(limit - sk_now_ms()));
    wait_status(&d1, 4002, b, "closed", (int)(limit - sk_now_ms()));
    for (int i = 0; i < 30 && scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND unit_returned = 1",
                                     (long long)item) < 2;
         i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'closed' AND "
                            "unit_returned = 1 AND close_reason = 'timeout' AND closed_at >= expires_at AND "
                            "closed_at <= expires_at + INTERVAL 3 SECOND",
                            (long long)item),
                     2);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no IN ('%s', '%s') AND status = 'closed'", a, b),
                     2);
    order_status(&d1, 4001, a, st, sizeof(st), &r);
    ck_assert_msg(json_is_string(json_object_get(r.json, "closed_at")), "no closed_at: %s", r.body);
    sk_test_resp_free(&r);

    /* the gateway has both trades closed */
    json_t *t = emu_trade(a);
    ck_assert_str_eq(jstr(t, "status"), "TRADE_CLOSED");
    json_decref(t);
    t = emu_trade(b);
    ck_assert_str_eq(jstr(t, "status"), "TRADE_CLOSED");
    json_decref(t);
    /* the scanned trade's TRADE_CLOSED notify was answered success (nothing to do) */
    char path[160];
    long est;
    int answered = 0;
    snprintf(path, sizeof(path), "notifies?out_trade_no=%s", b);
    for (int i = 0; i < 40 && !answered; i++) {
        json_t *log = emu_get(path, &est);
        for (size_t k = 0; k < json_array_size(log); k++) {
            json_t *e = json_array_get(log, k);
            if (strcmp(jstr(e, "trade_status"), "TRADE_CLOSED") == 0 && strcmp(jstr(e, "body"), "success") == 0 &&
                json_is_true(json_object_get(e, "ok")))
                answered = 1;
        }
        json_decref(log);
        if (!answered)
            sk_test_sleep_ms(50);
    }
    ck_assert_msg(answered, "no TRADE_CLOSED notify of %s answered success", b);

    /* the units are back, once each; the buyers' slots are free */
    ck_assert_int_eq(stock_left(item), 2);
    ck_assert_int_eq(redis_int("HLEN sk:{item:%lld}:orders", (long long)item), 0);
    ck_assert_int_eq(redis_int("HLEN sk:{item:%lld}:buyers", (long long)item), 0);
    /* a closed order cannot be confirmed */
    ck_assert_int_eq(confirm(&d1, 4001, a, "key-4001", &r), 409);
    sk_test_resp_free(&r);
    /* the buyer who found it sold out gets a unit now */
    long got = 0;
    for (int i = 0; i < 30 && got != 200; i++) {
        got = reserve_at(&d1, 4003, activity, item, NULL, NULL);
        if (got != 200)
            sk_test_sleep_ms(100);
    }
    ck_assert_int_eq(got, 200);
    ck_assert_int_eq(stock_left(item), 1);
}
END_TEST

/* A payment just before the deadline wins over the close: the order ends paid and
 * no unit goes back. The plugin gives the trade the order's deadline cut to the
 * second (time_expire), so the gateway's own deadline may be up to 1 s earlier: the
 * buyer pays 0.5 s before whichever comes first. */
START_TEST(payment_just_before_the_deadline_wins)
{
    json_int_t activity, item;
    char no[64], form[128];
    int64_t expires;
    emu_ensure();
    on_sale(3, &activity, &item);
    reserve_ok(5001, activity, item, no, &expires);
    wait_status(&d1, 5001, no, "created", 3000);
    confirm_ok(&d1, 5001, no, "key-5001", NULL, 0);
    snprintf(form, sizeof(form), "out_trade_no=%s", no);
    json_decref(emu_control("scan", form, 200));
    json_t *t = emu_trade(no);
    int64_t gw_expire = (int64_t)(json_number_value(json_object_get(t, "expire_epoch")) * 1000);
    json_decref(t);
    ck_assert_int_le(gw_expire, expires);
    int64_t pay_at = (gw_expire < expires ? gw_expire : expires) - 500;
    int64_t wait = pay_at - sk_now_ms();
    if (wait > 0)
        sk_test_sleep_ms((int)wait);
    json_decref(emu_control("pay", form, 200));

    wait_status(&d1, 5001, no, "paid", 5000);
    /* past the deadline and a few closer rounds: still paid, the unit still sold */
    wait = expires + 2500 - sk_now_ms();
    if (wait > 0)
        sk_test_sleep_ms((int)wait);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'paid' AND "
                            "unit_returned = 0 AND closed_at IS NULL",
                            no),
                     1);
    ck_assert_int_eq(stock_left(item), 2);
    ck_assert_int_eq(redis_int("HLEN sk:{item:%lld}:orders", (long long)item), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no = '%s'", no), 0);
    t = emu_trade(no);
    ck_assert_str_eq(jstr(t, "status"), "TRADE_SUCCESS");
    json_decref(t);
}
END_TEST

/* A (correctly signed) TRADE_SUCCESS notify for an order that is already closed:
 * answered success, the order stays closed, one refund is recorded, and the same
 * payment noticed again makes no second refund; the unit returned by the close is
 * not taken back or returned twice. */
START_TEST(payment_after_close_is_refunded_once)
{
    json_int_t activity, item;
    char no[64], ans[256];
    int64_t expires;
    emu_ensure();
    on_sale(2, &activity, &item);
    reserve_ok(6001, activity, item, no, &expires);
    wait_status(&d1, 6001, no, "created", 3000);
    confirm_ok(&d1, 6001, no, "key-6001", NULL, 0);
    wait_status(&d1, 6001, no, "closed", (int)(expires + 5000 - sk_now_ms()));
    for (int i = 0; i < 30 && stock_left(item) != 2; i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(stock_left(item), 2);

    char *body = notify_body(K.ali_priv, APP_ID, no, "2026LATE6001", PRICE_YUAN);
    long st = post_notify(body, FORM, ans, sizeof(ans));
    ck_assert_msg(st == 200 && strcmp(ans, "success") == 0, "late notify: %ld \"%s\"", st, ans);
    free(body);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'closed'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no = '%s' AND amount_cents = %d AND "
                            "status IN ('pending', 'succeeded')",
                            no, PRICE_CENTS),
                     1);
    /* a second notify of the same payment (another notify_id) */
    body = notify_body(K.ali_priv, APP_ID, no, "2026LATE6001", PRICE_YUAN);
    st = post_notify(body, FORM, ans, sizeof(ans));
    ck_assert_msg(st == 200 && strcmp(ans, "success") == 0, "second late notify: %ld \"%s\"", st, ans);
    free(body);
    sk_test_sleep_ms(1500); /* a closer round, which retries pending refunds */
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no = '%s'", no), 1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'closed' AND "
                            "unit_returned = 1",
                            no),
                     1);
    ck_assert_int_eq(stock_left(item), 2);
}
END_TEST

/* Two daemons on the same MariaDB and Redis, both running closers: every order
 * that times out is closed once and its unit comes back once — the stock ends at
 * its initial value exactly. */
START_TEST(two_daemons_return_each_unit_once)
{
    enum { N = 6 };
    json_int_t activity, item;
    char no[N][64];
    int64_t expires[N], last = 0;
    emu_ensure();
    d2_ensure();
    long long returned_before = units_returned(&d1) + units_returned(&d2);
    on_sale(N, &activity, &item);
    for (int i = 0; i < N; i++) {
        const struct sk_test_daemon *d = i % 2 ? &d2 : &d1;
        ck_assert_int_eq(reserve_at(d, 7001 + (uint64_t)i, activity, item, no[i], &expires[i]), 200);
        if (expires[i] > last)
            last = expires[i];
    }
    ck_assert_int_eq(stock_left(item), 0);
    for (int i = 0; i < N; i++)
        wait_status(&d1, 7001 + (uint64_t)i, no[i], "created", 3000);
    /* four confirmed (on either daemon), two never; one trade scanned */
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key-%d", 7001 + i);
        confirm_ok(i % 2 ? &d1 : &d2, 7001 + (uint64_t)i, no[i], key, NULL, 0);
    }
    char form[128];
    snprintf(form, sizeof(form), "out_trade_no=%s", no[0]);
    json_decref(emu_control("scan", form, 200));

    for (int waited = 0; waited < (int)(last + 6000 - sk_now_ms()); waited += 100) {
        if (scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'closed' AND unit_returned = 1",
                   (long long)item) == N)
            break;
        sk_test_sleep_ms(100);
    }
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'closed' AND "
                            "unit_returned = 1",
                            (long long)item),
                     N);
    sk_test_sleep_ms(2000); /* more rounds of both closers: nothing more may come back */
    ck_assert_int_eq(stock_left(item), N);
    ck_assert_int_eq(redis_int("HLEN sk:{item:%lld}:orders", (long long)item), 0);
    ck_assert_int_eq(redis_int("HLEN sk:{item:%lld}:buyers", (long long)item), 0);
    ck_assert_int_eq(units_returned(&d1) + units_returned(&d2) - returned_before, N);
    /* each order closed by exactly one of the two */
    char *l1 = read_file(d1.log_path), *l2 = read_file(d2.log_path);
    for (int i = 0; i < N; i++) {
        char line[512];
        snprintf(line, sizeof(line), "order %s closed: not paid in time", no[i]);
        int n = count_of(l1, line) + count_of(l2, line);
        ck_assert_msg(n == 1, "order %s was closed %d times", no[i], n);
    }
    free(l1);
    free(l2);
}
END_TEST

/* The buyer pays but the gateway's notify never arrives (the trades were made by
 * d2, whose notify_url nobody serves): the close asks the gateway first, so the
 * order becomes paid instead of closed — at its deadline, and at once when an
 * operator closes it by hand. */
START_TEST(payment_without_notify_found_by_query)
{
    json_int_t activity, item;
    char p1[64], p2[64], form[128], st[32], path[160], trade1[80], trade2[80];
    int64_t exp1, exp2;
    struct sk_test_resp r;
    emu_ensure();
    d2_ensure();
    on_sale(3, &activity, &item);
    ck_assert_int_eq(reserve_at(&d2, 7601, activity, item, p1, &exp1), 200);
    ck_assert_int_eq(reserve_at(&d2, 7602, activity, item, p2, &exp2), 200);
    wait_status(&d2, 7601, p1, "created", 3000);
    wait_status(&d2, 7602, p2, "created", 3000);
    confirm_ok(&d2, 7601, p1, "key-7601", NULL, 0);
    confirm_ok(&d2, 7602, p2, "key-7602", NULL, 0);
    snprintf(form, sizeof(form), "out_trade_no=%s", p1);
    json_decref(emu_control("scan", form, 200));
    json_t *j = emu_control("pay", form, 200);
    snprintf(trade1, sizeof(trade1), "%s", jstr(j, "trade_no"));
    json_decref(j);
    snprintf(form, sizeof(form), "out_trade_no=%s", p2);
    j = emu_control("pay", form, 200);
    snprintf(trade2, sizeof(trade2), "%s", jstr(j, "trade_no"));
    json_decref(j);

    /* the notify fails (nobody at notify_url), so nobody knows yet */
    snprintf(path, sizeof(path), "notifies?out_trade_no=%s", p1);
    long est;
    json_t *log = NULL;
    for (int i = 0; i < 40; i++) {
        log = emu_get(path, &est);
        if (json_array_size(log) > 0)
            break;
        json_decref(log);
        log = NULL;
        sk_test_sleep_ms(50);
    }
    ck_assert_msg(json_array_size(log) > 0, "the emulator sent no notify for %s", p1);
    ck_assert(json_is_false(json_object_get(json_array_get(log, 0), "ok")));
    json_decref(log);
    order_status(&d1, 7601, p1, st, sizeof(st), NULL);
    ck_assert_str_eq(st, "paying");

    /* an operator closes p2 by hand: the gateway says paid, so it is paid */
    snprintf(path, sizeof(path), "/admin/v1/orders/%s/close", p2);
    ck_assert_int_eq(admin("POST", path, NULL, &r), 200);
    ck_assert_msg(strcmp(jstr(r.json, "status"), "paid") == 0, "closing a paid order by hand: %s", r.body);
    sk_test_resp_free(&r);
    /* p1 at its deadline */
    wait_status(&d1, 7601, p1, "paid", (int)(exp1 + 5000 - sk_now_ms()));

    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'paid' AND "
                            "unit_returned = 0 AND closed_at IS NULL AND paid_at IS NOT NULL",
                            (long long)item),
                     2);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'paid' AND "
                            "trade_no = '%s'",
                            p1, trade1),
                     1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s' AND status = 'paid' AND "
                            "trade_no = '%s'",
                            p2, trade2),
                     1);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM refunds WHERE order_no IN ('%s', '%s')", p1, p2), 0);
    ck_assert_int_eq(stock_left(item), 1);
}
END_TEST

/* The gateway goes away (twice). First outage: confirm answers 503 overloaded at
 * once, records nothing, and the same confirm succeeds once the gateway is back
 * (same port, same state). Second outage, longer than an order's time: orders whose
 * trade was created before stay open past their deadline while the gateway cannot
 * be asked (a payment could be lost otherwise) and are closed once it answers again;
 * an order never confirmed (no trade) is closed locally during the outage. */
START_TEST(gateway_down_confirm_and_timeouts)
{
    json_int_t activity, item;
    char a[64], b[64], c[64], st[32];
    int64_t exp_a, exp_b, exp_c;
    struct sk_test_resp r;
    emu_ensure();
    on_sale(5, &activity, &item);

    /* outage 1: confirm */
    reserve_ok(8001, activity, item, a, &exp_a);
    wait_status(&d1, 8001, a, "created", 3000);
    emu_stop();
    int64_t t0 = sk_mono_ms();
    ck_assert_int_eq(confirm(&d1, 8001, a, "key-8001", &r), 503);
    int64_t took = sk_mono_ms() - t0;
    ck_assert_str_eq(sk_test_err_code(&r), "overloaded");
    sk_test_resp_free(&r);
    ck_assert_msg(took < 2000, "confirm with the gateway down took %lld ms", (long long)took);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM payments WHERE order_no = '%s'", a), 0);
    order_status(&d1, 8001, a, st, sizeof(st), NULL);
    ck_assert_str_eq(st, "created");
    emu_start();
    confirm_ok(&d1, 8001, a, "key-8001", NULL, 0);
    order_status(&d1, 8001, a, st, sizeof(st), NULL);
    ck_assert_str_eq(st, "paying");

    /* outage 2: timeouts */
    reserve_ok(8002, activity, item, b, &exp_b);
    reserve_ok(8003, activity, item, c, &exp_c);
    wait_status(&d1, 8002, b, "created", 3000);
    wait_status(&d1, 8003, c, "created", 3000);
    confirm_ok(&d1, 8002, b, "key-8002", NULL, 0);
    emu_stop();
    int64_t wait = (exp_b > exp_c ? exp_b : exp_c) + 2500 - sk_now_ms();
    if (wait > 0)
        sk_test_sleep_ms((int)wait);
    order_status(&d1, 8001, a, st, sizeof(st), NULL);
    ck_assert_msg(strcmp(st, "paying") == 0, "order %s (trade at the away gateway) is %s", a, st);
    order_status(&d1, 8002, b, st, sizeof(st), NULL);
    ck_assert_msg(strcmp(st, "paying") == 0, "order %s (trade at the away gateway) is %s", b, st);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE order_no = '%s' AND status = 'closed' AND "
                            "unit_returned = 1",
                            c),
                     1);
    ck_assert_int_eq(stock_left(item), 5 - 2); /* c's unit back, a's and b's held */

    /* the gateway is back: both close, their trades closed there too */
    emu_start();
    wait_status(&d1, 8001, a, "closed", 5000);
    wait_status(&d1, 8002, b, "closed", 5000);
    json_t *t = emu_trade(b);
    ck_assert_str_eq(jstr(t, "status"), "TRADE_CLOSED");
    json_decref(t);
    for (int i = 0; i < 30 && stock_left(item) != 5; i++)
        sk_test_sleep_ms(100);
    ck_assert_int_eq(stock_left(item), 5);
    ck_assert_int_eq(scalar("SELECT COUNT(*) FROM orders WHERE item_id = %lld AND status = 'closed' AND "
                            "unit_returned = 1",
                            (long long)item),
                     3);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("payment");
    TCase *tc = tcase_create("payment");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, confirm_answers_and_is_idempotent);
    tcase_add_test(tc, confirm_before_the_order_is_in_mariadb);
    tcase_add_test(tc, concurrent_confirms_make_one_trade);
    tcase_add_test(tc, order_shows_payment_info_once_confirmed);
    tcase_add_test(tc, pay_then_replayed_notify);
    tcase_add_test(tc, bad_notifies_change_nothing);
    tcase_add_test(tc, timeout_closes_and_returns_the_unit);
    tcase_add_test(tc, payment_just_before_the_deadline_wins);
    tcase_add_test(tc, payment_after_close_is_refunded_once);
    tcase_add_test(tc, two_daemons_return_each_unit_once);
    tcase_add_test(tc, payment_without_notify_found_by_query);
    tcase_add_test(tc, gateway_down_confirm_and_timeouts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
