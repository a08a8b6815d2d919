/* Shared helpers for the Check suites; see support.h. */
#include "support.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <mysql.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

const char *sk_test_redis_host(void) { return env_or("SK_TEST_REDIS_HOST", "127.0.0.1"); }
int sk_test_redis_port(void) { return atoi(env_or("SK_TEST_REDIS_PORT", "6390")); }
const char *sk_test_mysql_host(void) { return env_or("SK_TEST_MYSQL_HOST", "127.0.0.1"); }
int sk_test_mysql_port(void) { return atoi(env_or("SK_TEST_MYSQL_PORT", "3390")); }
const char *sk_test_mysql_user(void) { return env_or("SK_TEST_MYSQL_USER", "seckill"); }
const char *sk_test_mysql_password(void) { return env_or("SK_TEST_MYSQL_PASSWORD", "seckill"); }

void sk_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void sk_test_db_fresh(const char *name)
{
    MYSQL *m = mysql_init(NULL);
    ck_assert_msg(m != NULL, "mysql_init failed");
    unsigned timeout = 5;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, sk_test_mysql_host(), sk_test_mysql_user(), sk_test_mysql_password(), NULL,
                            (unsigned)sk_test_mysql_port(), NULL, 0)) {
        char msg[512];
        snprintf(msg, sizeof(msg), "MariaDB at %s:%d not reachable (%s): run scripts/stack.sh start",
                 sk_test_mysql_host(), sk_test_mysql_port(), mysql_error(m));
        mysql_close(m);
        ck_abort_msg("%s", msg);
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", name);
    ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
    snprintf(sql, sizeof(sql), "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", name);
    ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
    mysql_close(m);
}

redisContext *sk_test_redis(int db)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(sk_test_redis_host(), sk_test_redis_port(), tv);
    ck_assert_msg(c != NULL && !c->err, "Redis at %s:%d not reachable (%s): run scripts/stack.sh start",
                  sk_test_redis_host(), sk_test_redis_port(), c ? c->errstr : "out of memory");
    redisReply *r = redisCommand(c, "SELECT %d", db);
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "SELECT %d failed", db);
    freeReplyObject(r);
    r = redisCommand(c, "FLUSHDB");
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "FLUSHDB failed");
    freeReplyObject(r);
    return c;
}

int sk_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    socklen_t len = sizeof(a);
    ck_assert_msg(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* --- HTTP client ---------------------------------------------------------------- */

struct buf {
    char *data;
    size_t len;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    char *p = realloc(b->data, b->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->len += n;
    p[b->len] = '\0';
    b->data = p;
    return n;
}

long sk_test_http(const char *method, const char *url, const char *bearer, const char *body,
                  const char *extra_header, struct sk_test_resp *out)
{
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    ck_assert_msg(c != NULL, "curl_easy_init failed");
    struct buf b = {calloc(1, 1), 0}, h = {calloc(1, 1), 0};
    struct curl_slist *hdrs = NULL;
    char auth[600];
    if (bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (extra_header)
        hdrs = curl_slist_append(hdrs, extra_header);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = b.data;
    out->body_len = b.len;
    out->headers = h.data;
    if (b.len > 0)
        out->json = json_loadb(b.data, b.len, 0, NULL);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return out->status;
}

void sk_test_resp_free(struct sk_test_resp *r)
{
    free(r->body);
    free(r->headers);
    if (r->json)
        json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

const char *sk_test_err_code(const struct sk_test_resp *r)
{
    json_t *code = json_object_get(json_object_get(r->json, "error"), "code");
    return json_is_string(code) ? json_string_value(code) : "";
}

/* --- the real daemon ------------------------------------------------------------ */

static int healthz_ok(const struct sk_test_daemon *d)
{
    char url[128];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/healthz", d->client_url);
    long st = sk_test_http("GET", url, NULL, NULL, NULL, &r);
    sk_test_resp_free(&r);
    return st == 200;
}

void sk_test_daemon_dump_log(const struct sk_test_daemon *d)
{
    FILE *f = fopen(d->log_path, "r");
    if (f == NULL)
        return;
    char line[1024];
    fprintf(stderr, "---- daemon log %s ----\n", d->log_path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

void sk_test_daemon_start(struct sk_test_daemon *d, const char *database, int redis_db, const char *extra_yaml,
                          int keep_db)
{
    const char *daemon = getenv("SK_DAEMON");
    ck_assert_msg(daemon != NULL, "SK_DAEMON is not set (make check sets it)");
    if (d->dir[0] == '\0') {
        snprintf(d->dir, sizeof(d->dir), "/tmp/sktest-%s-XXXXXX", database);
        ck_assert_msg(mkdtemp(d->dir) != NULL, "mkdtemp: %s", strerror(errno));
        d->client_port = sk_test_free_port();
        d->admin_port = sk_test_free_port();
        snprintf(d->config_path, sizeof(d->config_path), "%s/seckilld.yaml", d->dir);
        snprintf(d->log_path, sizeof(d->log_path), "%s/seckilld.log", d->dir);
        snprintf(d->client_url, sizeof(d->client_url), "http://127.0.0.1:%d", d->client_port);
        snprintf(d->admin_url, sizeof(d->admin_url), "http://127.0.0.1:%d", d->admin_port);
    }
    snprintf(d->database, sizeof(d->database), "%s", database);
    d->redis_db = redis_db;
    if (!keep_db) {
        sk_test_db_fresh(database);
        if (d->redis_port == 0)
            redisFree(sk_test_redis(redis_db));
    }
    const char *plugin_dir = getenv("SK_PLUGIN_BUILD_DIR");
    FILE *f = fopen(d->config_path, "w");
    ck_assert_msg(f != NULL, "cannot write %s: %s", d->config_path, strerror(errno));
    fprintf(f,
            "log_level: debug\n"
            "workers: 2\n"
            "listen:\n  client: 127.0.0.1:%d\n  admin: 127.0.0.1:%d\n"
            "mariadb:\n  host: %s\n  port: %d\n  user: %s\n  password: %s\n  database: %s\n"
            "auth:\n  jwt_secret: %s\n  admin_token: %s\n"
            "scheduler:\n  tick_ms: 100\n"
            "%s%s%s"
            "plugins:\n  stock:\n    name: redis\n    config:\n      host: %s\n      port: %d\n      db: %d\n",
            d->client_port, d->admin_port, sk_test_mysql_host(), sk_test_mysql_port(), sk_test_mysql_user(),
            sk_test_mysql_password(), database, SK_TEST_JWT_SECRET, SK_TEST_ADMIN_TOKEN,
            plugin_dir ? "plugin_dir: " : "", plugin_dir ? plugin_dir : "", plugin_dir ? "\n" : "",
            sk_test_redis_host(), d->redis_port ? d->redis_port : sk_test_redis_port(), redis_db);
    if (d->plugins_yaml)
        fputs(d->plugins_yaml, f);
    if (extra_yaml)
        fputs(extra_yaml, f);
    fclose(f);

    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        unsetenv("SECKILL_JWT_SECRET");
        unsetenv("SECKILL_ADMIN_TOKEN");
        execl(daemon, daemon, "-c", d->config_path, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < 300; i++) { /* up to 30 s: migrations on a cold MariaDB */
        if (healthz_ok(d))
            return;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            d->pid = 0;
            sk_test_daemon_dump_log(d);
            ck_abort_msg("seckilld exited during start-up (status %d)", status);
        }
        sk_test_sleep_ms(100);
    }
    sk_test_daemon_dump_log(d);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    d->pid = 0;
    ck_abort_msg("seckilld did not answer /healthz within 30 s");
}

int sk_test_daemon_stop(struct sk_test_daemon *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    int status = -1;
    for (int i = 0; i < 200; i++) { /* 20 s */
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return status;
        }
        sk_test_sleep_ms(100);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    return -1;
}
