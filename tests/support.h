/*
 * Shared helpers for the Check suites: where the private stack is, fresh databases,
 * a synchronous Redis connection, an HTTP client (libcurl), and starting the real
 * daemon with a generated config.
 *
 * The stack addresses come from the environment that `scripts/stack.sh env` prints
 * (SK_TEST_REDIS_PORT, SK_TEST_MYSQL_PORT, …); the defaults are the stack's own, so
 * `scripts/stack.sh start && make check` works without exporting anything.
 */
#ifndef SK_TEST_SUPPORT_H
#define SK_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

const char *sk_test_redis_host(void);   /* SK_TEST_REDIS_HOST, 127.0.0.1 */
int sk_test_redis_port(void);           /* SK_TEST_REDIS_PORT, 6390 */
const char *sk_test_mysql_host(void);   /* SK_TEST_MYSQL_HOST, 127.0.0.1 */
int sk_test_mysql_port(void);           /* SK_TEST_MYSQL_PORT, 3390 */
const char *sk_test_mysql_user(void);   /* SK_TEST_MYSQL_USER, seckill */
const char *sk_test_mysql_password(void); /* SK_TEST_MYSQL_PASSWORD, seckill */

/* Drop and create database `name` (each suite uses its own, so suites may run in
 * parallel). Aborts the test with a clear message when MariaDB is not reachable. */
void sk_test_db_fresh(const char *name);

/* A synchronous Redis connection that has SELECTed `db` (each suite uses its own
 * db number, 1..15) and flushed it. Aborts the test when Redis is not reachable.
 * Caller frees with redisFree. */
redisContext *sk_test_redis(int db);

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
int sk_test_free_port(void);

/* --- HTTP client ---------------------------------------------------------------- */
struct sk_test_resp {
    long status;          /* 0 when the request failed at the transport */
    char *body;           /* NUL-terminated, owned */
    size_t body_len;
    char *headers;        /* raw response headers, owned */
    json_t *json;         /* parsed body or NULL, owned */
};
/* Send one request (body may be NULL; bearer may be NULL for none; extra_header
 * like "Idempotency-Key: x" or NULL). Returns the status (0 on transport failure). */
long sk_test_http(const char *method, const char *url, const char *bearer, const char *body,
                  const char *extra_header, struct sk_test_resp *out);
void sk_test_resp_free(struct sk_test_resp *r);
/* The error code of an {"error":{"code":…}} answer, or "" */
const char *sk_test_err_code(const struct sk_test_resp *r);

/* --- the real daemon ------------------------------------------------------------ */
struct sk_test_daemon {
    pid_t pid;
    int client_port, admin_port;
    char dir[256];          /* temp folder with config and log */
    char config_path[320];
    char log_path[320];
    char admin_url[64];     /* "http://127.0.0.1:<admin_port>" */
    char client_url[64];
    char database[64];
    int redis_db;
    /* Set before sk_test_daemon_start: more entries under `plugins:` (e.g. a queue or
     * payment plugin), each line indented by two spaces; NULL for none. Not owned. */
    const char *plugins_yaml;
    /* Set before sk_test_daemon_start: the stock plugin's Redis port when it is not
     * the stack's (e.g. a private redis-server a test kills); 0 for the stack's.
     * That Redis is the test's own: it is not flushed. */
    int redis_port;
};
#define SK_TEST_ADMIN_TOKEN "test-admin-token-0123456789"
#define SK_TEST_JWT_SECRET "test-jwt-secret-0123456789abcdef"

/* Write a config for database `database` (created fresh unless keep_db) and Redis db
 * `redis_db` (flushed unless keep_db), with `extra_yaml` appended (may be NULL), start
 * $SK_DAEMON with it and wait until /healthz answers. Returns 0 or aborts the test with
 * the daemon's log. Re-using d after stop restarts with the same ports and dir. */
void sk_test_daemon_start(struct sk_test_daemon *d, const char *database, int redis_db, const char *extra_yaml,
                          int keep_db);
/* Send `sig` (SIGTERM for a graceful stop, SIGKILL for a crash) and wait; returns the
 * exit status as from waitpid (use WIFEXITED/WEXITSTATUS), -1 on timeout (then killed). */
int sk_test_daemon_stop(struct sk_test_daemon *d, int sig);
/* Print the daemon's log to stderr (for failures). */
void sk_test_daemon_dump_log(const struct sk_test_daemon *d);

/* Sleep for ms milliseconds. */
void sk_test_sleep_ms(int ms);

#endif
