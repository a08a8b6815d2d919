/* The YAML configuration (core/config.c): the example file, every error class with
 * its "file:line: key" prefix, defaults, environment overrides, listen addresses,
 * durations and the typing of plugin config sections. Needs no Redis or MariaDB. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "core/config.h"

#ifndef SK_TEST_SRCDIR
#error "SK_TEST_SRCDIR must name the source tree (tests/local.mk defines it)"
#endif

/* The smallest valid config, in pieces so that tests can leave one out. Line
 * numbers below count from these: MARIADB is lines 1-5, AUTH 6-8, PLUGINS 9-11. */
#define MARIADB "mariadb:\n  host: 127.0.0.1\n  port: 3390\n  user: u\n  database: d\n"
#define AUTH "auth:\n  jwt_secret: 0123456789abcdef\n  admin_token: fedcba9876543210\n"
#define PLUGINS "plugins:\n  stock:\n    name: redis\n"
#define BASE MARIADB AUTH PLUGINS

static struct sk_config cfg;
static char err[SK_CONFIG_ERRLEN];

static void clear_env(void)
{
    unsetenv("SECKILL_JWT_SECRET");
    unsetenv("SECKILL_ADMIN_TOKEN");
}

static void free_cfg(void)
{
    sk_config_free(&cfg);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int load(const char *yaml)
{
    err[0] = '\0';
    return sk_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err);
}

/* Load text that must fail: the status, the zeroed output and the message prefix. */
#define EXPECT_ERR(yaml, prefix)                                                                                  \
    do {                                                                                                          \
        sk_config_free(&cfg);                                                                                     \
        memset(&cfg, 0x5a, sizeof(cfg));                                                                          \
        int rc_ = load(yaml);                                                                                     \
        ck_assert_msg(rc_ == SK_ERR, "loaded but should fail with \"%s\":\n%s", (prefix), (yaml));               \
        ck_assert_msg(all_zero(&cfg, sizeof(cfg)), "output not zeroed after \"%s\"", err);                       \
        ck_assert_msg(strncmp(err, (prefix), strlen(prefix)) == 0, "expected \"%s…\"\n     got \"%s\"", (prefix), \
                      err);                                                                                       \
    } while (0)

#define EXPECT_OK(yaml)                                                                                           \
    do {                                                                                                          \
        sk_config_free(&cfg);                                                                                     \
        int rc_ = load(yaml);                                                                                     \
        ck_assert_msg(rc_ == SK_OK, "failed: %s\n%s", err, (yaml));                                              \
    } while (0)

/* ------------------------------------------------------------------------------ */

START_TEST(example_file_loads)
{
    const char *path = SK_TEST_SRCDIR "/config/seckilld.yaml";
    int rc = sk_config_load(path, &cfg, err);
    ck_assert_msg(rc == SK_OK, "%s", err);
    ck_assert_str_eq(cfg.path, path);
    ck_assert_int_eq(cfg.log_level, SK_LOG_INFO);
    ck_assert_str_eq(cfg.client.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.client.port, 8080);
    ck_assert_str_eq(cfg.admin.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.admin.port, 8081);
    ck_assert_str_eq(cfg.mariadb.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.mariadb.port, 3390);
    ck_assert_str_eq(cfg.mariadb.user, "seckill");
    ck_assert_str_eq(cfg.mariadb.password, "seckill");
    ck_assert_str_eq(cfg.mariadb.database, "seckill");
    ck_assert_uint_ge(strlen(cfg.jwt_secret), 16);
    ck_assert_uint_ge(strlen(cfg.admin_token), 16);
    ck_assert_int_eq(cfg.order_timeout_ms, 15 * 60 * 1000);
    ck_assert_uint_eq(cfg.scheduler_tick_ms, 250);
    ck_assert_int_eq(cfg.stock.present, 1);
    ck_assert_str_eq(cfg.stock.name, "redis");
    ck_assert_str_eq(cfg.stock.path, "");
    ck_assert_str_eq(cfg.stock.config_json, "{\"host\":\"127.0.0.1\",\"port\":6390,\"db\":0,"
                                            "\"connect_timeout_ms\":1000,\"command_timeout_ms\":1000,"
                                            "\"reserve_batch\":64}");
    /* the example carries every reservation to MariaDB through Redis Streams; the
     * payment plugin is added by the demo (it needs the emulator's keys) */
    ck_assert_int_eq(cfg.queue.present, 1);
    ck_assert_str_eq(cfg.queue.name, "redis_streams");
    ck_assert_str_eq(cfg.queue.config_json, "{\"host\":\"127.0.0.1\",\"port\":6390,\"db\":0,"
                                            "\"group\":\"seckill-orders\",\"claim_idle_ms\":30000}");
    ck_assert_int_eq(cfg.payment.present, 0);

    /* `where` names the line of "  stock:" in the file, whatever edits move it. */
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char line[512], want[600];
    int n = 0, stock_line = 0;
    while (stock_line == 0 && fgets(line, sizeof(line), f) != NULL) {
        n++;
        if (strcmp(line, "  stock:\n") == 0)
            stock_line = n;
    }
    fclose(f);
    ck_assert_int_gt(stock_line, 0);
    snprintf(want, sizeof(want), "%s:%d", path, stock_line);
    ck_assert_str_eq(cfg.stock.where, want);
}
END_TEST

START_TEST(defaults)
{
    EXPECT_OK(BASE);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want_workers = cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
    ck_assert_str_eq(cfg.path, "t.yaml");
    ck_assert_int_eq(cfg.log_level, SK_LOG_INFO);
    ck_assert_uint_eq(cfg.workers, want_workers);
    ck_assert_str_eq(cfg.client.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.client.port, 8080);
    ck_assert_str_eq(cfg.admin.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.admin.port, 8081);
    ck_assert_uint_eq(cfg.max_body_bytes, 16384);
    ck_assert_uint_eq(cfg.idle_timeout_ms, 10000);
    ck_assert_uint_eq(cfg.max_connections, 20000);
    ck_assert_str_eq(cfg.mariadb.password, "");
    ck_assert_uint_eq(cfg.mariadb.pool_size, 4);
    ck_assert_int_eq(cfg.order_timeout_ms, 900000);
    ck_assert_uint_eq(cfg.scheduler_tick_ms, 250);
    ck_assert_str_eq(cfg.plugin_dir, SK_PLUGIN_DIR);
    ck_assert_str_eq(cfg.jwt_secret, "0123456789abcdef");
    ck_assert_str_eq(cfg.admin_token, "fedcba9876543210");
    ck_assert_str_eq(cfg.stock.config_json, "{}");
    ck_assert_str_eq(cfg.stock.where, "t.yaml:10");
    ck_assert_int_eq(cfg.queue.present, 0);
    ck_assert_ptr_null(cfg.queue.config_json);
}
END_TEST

START_TEST(every_key)
{
    EXPECT_OK("log_level: debug\n"
              "workers: 3\n"
              "listen:\n  client: 0.0.0.0:9000\n  admin: '[::1]:9001'\n"
              "http:\n  max_body_bytes: 1024\n  idle_timeout_ms: 500\n  max_connections: 7\n"
              "mariadb:\n  host: db.example\n  port: 3306\n  user: shop\n  password: \"p:w d\"\n"
              "  database: shop_1\n  pool_size: 9\n"
              "auth:\n  jwt_secret: abcdefghijklmnopqrstuvwxyz\n  admin_token: ABCDEFGHIJKLMNOP\n"
              "order_timeout: 90s\n"
              "scheduler:\n  tick_ms: 10\n"
              "plugin_dir: /opt/sk/plugins\n"
              "plugins:\n"
              "  stock: {name: sharded, path: /opt/x.so, config: {nodes: 3}}\n"
              "  queue:\n    name: redis_streams\n"
              "  payment:\n    name: alipay\n    config:\n");
    ck_assert_int_eq(cfg.log_level, SK_LOG_DEBUG);
    ck_assert_uint_eq(cfg.workers, 3);
    ck_assert_str_eq(cfg.client.host, "0.0.0.0");
    ck_assert_uint_eq(cfg.client.port, 9000);
    ck_assert_str_eq(cfg.admin.host, "::1");
    ck_assert_uint_eq(cfg.admin.port, 9001);
    ck_assert_uint_eq(cfg.max_body_bytes, 1024);
    ck_assert_uint_eq(cfg.idle_timeout_ms, 500);
    ck_assert_uint_eq(cfg.max_connections, 7);
    ck_assert_str_eq(cfg.mariadb.host, "db.example");
    ck_assert_uint_eq(cfg.mariadb.port, 3306);
    ck_assert_str_eq(cfg.mariadb.user, "shop");
    ck_assert_str_eq(cfg.mariadb.password, "p:w d");
    ck_assert_str_eq(cfg.mariadb.database, "shop_1");
    ck_assert_uint_eq(cfg.mariadb.pool_size, 9);
    ck_assert_str_eq(cfg.jwt_secret, "abcdefghijklmnopqrstuvwxyz");
    ck_assert_str_eq(cfg.admin_token, "ABCDEFGHIJKLMNOP");
    ck_assert_int_eq(cfg.order_timeout_ms, 90000);
    ck_assert_uint_eq(cfg.scheduler_tick_ms, 10);
    ck_assert_str_eq(cfg.plugin_dir, "/opt/sk/plugins");
    ck_assert_str_eq(cfg.stock.name, "sharded");
    ck_assert_str_eq(cfg.stock.path, "/opt/x.so");
    ck_assert_str_eq(cfg.stock.config_json, "{\"nodes\":3}");
    ck_assert_str_eq(cfg.stock.where, "t.yaml:25");
    ck_assert_int_eq(cfg.queue.present, 1);
    ck_assert_str_eq(cfg.queue.name, "redis_streams");
    ck_assert_str_eq(cfg.queue.config_json, "{}");
    ck_assert_str_eq(cfg.queue.where, "t.yaml:26");
    ck_assert_int_eq(cfg.payment.present, 1);
    ck_assert_str_eq(cfg.payment.name, "alipay");
    ck_assert_str_eq(cfg.payment.config_json, "{}"); /* `config:` left empty */

    static const char *levels[] = {"error", "warn", "info", "debug", "WARN"};
    static const enum sk_log_level want[] = {SK_LOG_ERROR, SK_LOG_WARN, SK_LOG_INFO, SK_LOG_DEBUG, SK_LOG_WARN};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "log_level: %s\n" BASE, levels[i]);
        EXPECT_OK(yaml);
        ck_assert_int_eq(cfg.log_level, want[i]);
    }
}
END_TEST

START_TEST(file_errors)
{
    memset(&cfg, 0x5a, sizeof(cfg));
    ck_assert_int_eq(sk_config_load("/nonexistent-dir/seckilld.yaml", &cfg, err), SK_ERR);
    ck_assert_str_eq(err, "/nonexistent-dir/seckilld.yaml: cannot open: No such file or directory");
    ck_assert(all_zero(&cfg, sizeof(cfg)));

    memset(&cfg, 0x5a, sizeof(cfg));
    ck_assert_int_eq(sk_config_load("/", &cfg, err), SK_ERR);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");
    ck_assert(all_zero(&cfg, sizeof(cfg)));

    /* A real file's messages carry its name and the line. */
    char path[] = "/tmp/check_config-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = BASE "bogus: 1\n";
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    memset(&cfg, 0x5a, sizeof(cfg));
    int rc = sk_config_load(path, &cfg, err);
    char want[128];
    snprintf(want, sizeof(want), "%s:12: bogus: unknown key", path);
    unlink(path);
    ck_assert_int_eq(rc, SK_ERR);
    ck_assert_str_eq(err, want);
    ck_assert(all_zero(&cfg, sizeof(cfg)));
}
END_TEST

START_TEST(empty_and_not_a_mapping)
{
    EXPECT_ERR("", "t.yaml:1: the configuration is empty");
    EXPECT_ERR("# only a comment\n\n   \n", "t.yaml:1: the configuration is empty");
    EXPECT_ERR("---\n", "t.yaml:1: the configuration is empty");
    EXPECT_ERR("\n\n~\n", "t.yaml:1: the configuration is empty");
    EXPECT_ERR("- a\n- b\n", "t.yaml:1: expected a mapping of keys at the top, got a sequence");
    EXPECT_ERR("\nhello\n", "t.yaml:2: expected a mapping of keys at the top, got \"hello\"");
    EXPECT_ERR(BASE "---\nworkers: 2\n", "t.yaml:12: only one YAML document is allowed");
}
END_TEST

START_TEST(syntax_errors)
{
    /* The line of the problem and libyaml's own words. */
    EXPECT_ERR("workers: 2\nlisten:\n  client: [1, 2\nhttp: {}\n",
               "t.yaml:4: YAML syntax error: did not find expected ',' or ']'");
    EXPECT_ERR("workers: 2\n  bad indent: 1\n", "t.yaml:2: YAML syntax error: mapping values are not allowed");
    EXPECT_ERR("workers: 2\nlog_level: \"info\n", "t.yaml:3: YAML syntax error: found unexpected end of stream");
    EXPECT_ERR("a: 1\n\tb: 2\n", "t.yaml:2: YAML syntax error: found a tab character that violates indentation");
    /* Invalid UTF-8 is a reader error: libyaml gives an offset, turned into a line. */
    EXPECT_ERR("workers: 2\nlog_level: \xff\xfe\n", "t.yaml:2: YAML syntax error: invalid leading UTF-8 octet");
}
END_TEST

START_TEST(unknown_keys)
{
    EXPECT_ERR("wrokers: 2\n" BASE, "t.yaml:1: wrokers: unknown key");
    EXPECT_ERR(BASE "http:\n  max_body: 5\n", "t.yaml:13: http.max_body: unknown key");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n  cache:\n    name: x\n",
               "t.yaml:12: plugins.cache: unknown key");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    conifg: {}\n",
               "t.yaml:12: plugins.stock.conifg: unknown key");
    EXPECT_ERR(BASE "? [a, b]\n: 1\n", "t.yaml:12: expected a key, got a sequence");
    /* Keys are case-sensitive. */
    EXPECT_ERR("Workers: 2\n" BASE, "t.yaml:1: Workers: unknown key");
}
END_TEST

START_TEST(wrong_types)
{
    EXPECT_ERR("workers: many\n" BASE, "t.yaml:1: workers: expected an integer, got \"many\"");
    EXPECT_ERR("workers: '4'\n" BASE, "t.yaml:1: workers: expected an integer, got \"4\"");
    EXPECT_ERR("workers: 1.5\n" BASE, "t.yaml:1: workers: expected an integer, got \"1.5\"");
    EXPECT_ERR("workers:\n" BASE, "t.yaml:1: workers: expected an integer, got nothing");
    EXPECT_ERR("workers: [1]\n" BASE, "t.yaml:1: workers: expected an integer, got a sequence");
    EXPECT_ERR("http: 5\n" BASE, "t.yaml:1: http: expected a mapping, got \"5\"");
    EXPECT_ERR("http: [a]\n" BASE, "t.yaml:1: http: expected a mapping, got a sequence");
    EXPECT_ERR("listen:\n  client: [a]\n" BASE, "t.yaml:2: listen.client: expected \"host:port\", got a sequence");
    EXPECT_ERR("mariadb:\n  host: {a: 1}\n", "t.yaml:2: mariadb.host: expected a string, got a mapping");
    EXPECT_ERR("log_level: verbose\n" BASE,
               "t.yaml:1: log_level: expected one of error, warn, info, debug, got \"verbose\"");
    EXPECT_ERR("log_level: [info]\n" BASE, "t.yaml:1: log_level: expected one of");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    config: host=x\n",
               "t.yaml:12: plugins.stock.config: expected a mapping, got \"host=x\"");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock: redis\n", "t.yaml:10: plugins.stock: expected a mapping, got \"redis\"");
    EXPECT_ERR(MARIADB AUTH "plugins: [stock]\n", "t.yaml:9: plugins: expected a mapping, got a sequence");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 1\n  user: \"a\\0b\"\n  database: d\n" AUTH PLUGINS,
               "t.yaml:4: mariadb.user: contains a NUL byte");
    /* A string field takes any scalar as its text. */
    EXPECT_OK("mariadb:\n  host: 10.0.0.1\n  port: 1\n  user: 1234\n  password: true\n  database: d\n" AUTH PLUGINS);
    ck_assert_str_eq(cfg.mariadb.user, "1234");
    ck_assert_str_eq(cfg.mariadb.password, "true");
}
END_TEST

START_TEST(out_of_range)
{
    EXPECT_ERR("workers: 0\n" BASE, "t.yaml:1: workers: 0 is out of range (1..64)");
    EXPECT_ERR("workers: 65\n" BASE, "t.yaml:1: workers: 65 is out of range (1..64)");
    EXPECT_ERR("workers: -1\n" BASE, "t.yaml:1: workers: -1 is out of range (1..64)");
    EXPECT_ERR("workers: 99999999999999999999999\n" BASE,
               "t.yaml:1: workers: 99999999999999999999999 is out of range");
    EXPECT_ERR(BASE "scheduler:\n  tick_ms: 9\n", "t.yaml:13: scheduler.tick_ms: 9 is out of range (10..60000)");
    EXPECT_ERR(BASE "scheduler:\n  tick_ms: 60001\n", "t.yaml:13: scheduler.tick_ms: 60001 is out of range");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 0\n  user: u\n  database: d\n" AUTH PLUGINS,
               "t.yaml:3: mariadb.port: 0 is out of range (1..65535)");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 65536\n  user: u\n  database: d\n" AUTH PLUGINS,
               "t.yaml:3: mariadb.port: 65536 is out of range (1..65535)");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 1\n  user: u\n  database: d\n  pool_size: 0\n" AUTH PLUGINS,
               "t.yaml:6: mariadb.pool_size: 0 is out of range (1..256)");
    EXPECT_ERR("http:\n  max_body_bytes: 10\n" BASE, "t.yaml:2: http.max_body_bytes: 10 is out of range");
    EXPECT_ERR("http:\n  idle_timeout_ms: 0\n" BASE, "t.yaml:2: http.idle_timeout_ms: 0 is out of range");
    EXPECT_ERR("http:\n  max_connections: 0\n" BASE, "t.yaml:2: http.max_connections: 0 is out of range");
    EXPECT_ERR("order_timeout: 0\n" BASE, "t.yaml:1: order_timeout: must be more than 0");
    EXPECT_OK("workers: 64\n" BASE);
    ck_assert_uint_eq(cfg.workers, 64);
    EXPECT_OK("workers: 1\n" BASE);
    ck_assert_uint_eq(cfg.workers, 1);
}
END_TEST

START_TEST(duplicate_keys)
{
    EXPECT_ERR("workers: 2\nworkers: 3\n" BASE, "t.yaml:2: workers: duplicate key (first at line 1)");
    EXPECT_ERR(BASE "mariadb:\n  host: x\n", "t.yaml:12: mariadb: duplicate key (first at line 1)");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 1\n  user: u\n  host: h2\n  database: d\n" AUTH PLUGINS,
               "t.yaml:5: mariadb.host: duplicate key (first at line 2)");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    config:\n      port: 1\n      db: 2\n"
                            "      port: 3\n",
               "t.yaml:15: plugins.stock.config.port: duplicate key (first at line 13)");
    EXPECT_ERR("listen: {client: ':1', client: ':2'}\n" BASE,
               "t.yaml:1: listen.client: duplicate key (first at line 1)");
}
END_TEST

START_TEST(missing_required)
{
    EXPECT_ERR(AUTH PLUGINS, "t.yaml:1: mariadb: missing required key");
    EXPECT_ERR(MARIADB AUTH, "t.yaml:1: plugins: missing required key");
    EXPECT_ERR(AUTH "mariadb:\n  port: 3390\n  user: u\n  database: d\n" PLUGINS,
               "t.yaml:4: mariadb.host: missing required key");
    EXPECT_ERR(AUTH "mariadb:\n  host: h\n  user: u\n  database: d\n" PLUGINS,
               "t.yaml:4: mariadb.port: missing required key");
    EXPECT_ERR(AUTH "mariadb:\n  host: h\n  port: 1\n  database: d\n" PLUGINS,
               "t.yaml:4: mariadb.user: missing required key");
    EXPECT_ERR(AUTH "mariadb:\n  host: h\n  port: 1\n  user: u\n" PLUGINS,
               "t.yaml:4: mariadb.database: missing required key");
    EXPECT_ERR(AUTH PLUGINS "mariadb:\n", "t.yaml:7: mariadb.host: missing required key");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  queue:\n    name: redis_streams\n",
               "t.yaml:9: plugins.stock: missing required key");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    path: /x.so\n", "t.yaml:10: plugins.stock.name: missing required key");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n", "t.yaml:10: plugins.stock.name: missing required key");
    /* Present but empty is no better. */
    EXPECT_ERR("mariadb:\n  host: ''\n  port: 1\n  user: u\n  database: d\n" AUTH PLUGINS,
               "t.yaml:2: mariadb.host: must not be empty");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 1\n  user:\n  database: d\n" AUTH PLUGINS,
               "t.yaml:4: mariadb.user: must not be empty");
    EXPECT_ERR("plugin_dir: ''\n" BASE, "t.yaml:1: plugin_dir: must not be empty");
}
END_TEST

START_TEST(names)
{
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: Redis\n",
               "t.yaml:11: plugins.stock.name: a plugin name must be [a-z0-9_]+, got \"Redis\"");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: ../evil\n", "t.yaml:11: plugins.stock.name: a plugin name");
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: ''\n", "t.yaml:11: plugins.stock.name: a plugin name");
    EXPECT_ERR("mariadb:\n  host: h\n  port: 1\n  user: u\n  database: 'x`; drop'\n" AUTH PLUGINS,
               "t.yaml:5: mariadb.database: a database name must be [A-Za-z0-9_]+");
    char yaml[1024], name[80];
    memset(name, 'a', 70);
    name[70] = '\0';
    snprintf(yaml, sizeof(yaml), MARIADB AUTH "plugins:\n  stock:\n    name: %s\n", name);
    EXPECT_ERR(yaml, "t.yaml:11: plugins.stock.name: \"aaaa");
    ck_assert_msg(strstr(err, "is too long (at most 63 bytes)") != NULL, "%s", err);
}
END_TEST

START_TEST(secrets_and_environment)
{
    /* Required when the environment does not give them. */
    EXPECT_ERR(MARIADB "auth:\n  admin_token: fedcba9876543210\n" PLUGINS,
               "t.yaml:6: auth.jwt_secret: missing required key (or set $SECKILL_JWT_SECRET)");
    EXPECT_ERR(MARIADB "auth:\n  jwt_secret: 0123456789abcdef\n" PLUGINS,
               "t.yaml:6: auth.admin_token: missing required key (or set $SECKILL_ADMIN_TOKEN)");
    EXPECT_ERR(MARIADB PLUGINS, "t.yaml:1: auth.jwt_secret: missing required key");
    /* Too short, and never repeated in the message. */
    EXPECT_ERR(MARIADB "auth:\n  jwt_secret: sesame\n  admin_token: fedcba9876543210\n" PLUGINS,
               "t.yaml:7: auth.jwt_secret: too short (6 bytes, at least 16)");
    ck_assert_ptr_null(strstr(err, "sesame"));
    char yaml[1024], longsecret[300];
    memset(longsecret, 'x', 299);
    longsecret[299] = '\0';
    snprintf(yaml, sizeof(yaml), MARIADB "auth:\n  jwt_secret: %s\n  admin_token: fedcba9876543210\n" PLUGINS,
             longsecret);
    EXPECT_ERR(yaml, "t.yaml:7: auth.jwt_secret: the value is too long (at most 255 bytes)");

    /* The environment wins over the file... */
    setenv("SECKILL_JWT_SECRET", "from-the-environment-1", 1);
    setenv("SECKILL_ADMIN_TOKEN", "admin-from-the-environment", 1);
    EXPECT_OK(BASE);
    ck_assert_str_eq(cfg.jwt_secret, "from-the-environment-1");
    ck_assert_str_eq(cfg.admin_token, "admin-from-the-environment");
    /* ...makes the keys optional, even a file secret that is too short... */
    EXPECT_OK(MARIADB PLUGINS);
    ck_assert_str_eq(cfg.jwt_secret, "from-the-environment-1");
    EXPECT_OK(MARIADB "auth:\n  jwt_secret: short\n" PLUGINS);
    ck_assert_str_eq(cfg.jwt_secret, "from-the-environment-1");
    /* ...and is held to the same length rule. */
    setenv("SECKILL_ADMIN_TOKEN", "tiny", 1);
    EXPECT_ERR(BASE, "t.yaml:8: auth.admin_token: $SECKILL_ADMIN_TOKEN is too short (4 bytes, at least 16)");
    ck_assert_ptr_null(strstr(err, "tiny"));
    setenv("SECKILL_ADMIN_TOKEN", "", 1);
    EXPECT_ERR(MARIADB PLUGINS, "t.yaml:1: auth.admin_token: $SECKILL_ADMIN_TOKEN is too short (0 bytes");
    /* Only one of the two from the environment. */
    unsetenv("SECKILL_ADMIN_TOKEN");
    EXPECT_OK(BASE);
    ck_assert_str_eq(cfg.jwt_secret, "from-the-environment-1");
    ck_assert_str_eq(cfg.admin_token, "fedcba9876543210");
    clear_env();
}
END_TEST

START_TEST(listen_addresses)
{
    static const struct {
        const char *value, *host;
        unsigned port;
    } good[] = {
        {"127.0.0.1:80", "127.0.0.1", 80},   {"'[::1]:9000'", "::1", 9000}, {"\"[::]:1\"", "::", 1},
        {":8080", "0.0.0.0", 8080},          {"localhost:1", "localhost", 1}, {"0.0.0.0:65535", "0.0.0.0", 65535},
        {"\"10.1.2.3:443\"", "10.1.2.3", 443}, {"'[fe80::1]:5'", "fe80::1", 5},
    };
    char yaml[1024];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(yaml, sizeof(yaml), "listen:\n  client: %s\n  admin: 127.0.0.2:7\n" BASE, good[i].value);
        EXPECT_OK(yaml);
        ck_assert_str_eq(cfg.client.host, good[i].host);
        ck_assert_uint_eq(cfg.client.port, good[i].port);
    }
    static const struct {
        const char *value, *msg;
    } bad[] = {
        {"abc", "expected \"host:port\", got \"abc\""},
        {"8080", "expected \"host:port\", got \"8080\""},
        {"127.0.0.1", "expected \"host:port\", got \"127.0.0.1\""},
        {"'127.0.0.1:'", "expected \"host:port\", got \"127.0.0.1:\""},
        {"127.0.0.1:80x", "expected \"host:port\", got \"127.0.0.1:80x\""},
        {"127.0.0.1:-1", "expected \"host:port\""},
        {"127.0.0.1:123456", "expected \"host:port\""},
        {"'[::1]80'", "expected \"host:port\", got \"[::1]80\""},
        {"'::1:80'", "expected \"host:port\", got \"::1:80\" (write IPv6 addresses as \"[::1]:port\")"},
        {"127.0.0.1:0", "port 0 is out of range (1..65535)"},
        {"127.0.0.1:65536", "port 65536 is out of range (1..65535)"},
        {"example.com:80", "\"example.com:80\": the host must be a numeric IPv4 or [IPv6] address or localhost"},
        {"300.1.1.1:80", "\"300.1.1.1:80\": the host must be"},
        {"'[127.0.0.1]:80'", "\"[127.0.0.1]:80\": the host must be"},
        {"'[]:80'", "\"[]:80\": the host must be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        snprintf(yaml, sizeof(yaml), "listen:\n  client: %s\n" BASE, bad[i].value);
        snprintf(want, sizeof(want), "t.yaml:2: listen.client: %s", bad[i].msg);
        EXPECT_ERR(yaml, want);
    }
    /* The two listeners may not take the same port of the same (or every) address. */
    EXPECT_ERR("listen:\n  client: 127.0.0.1:9000\n  admin: 0.0.0.0:9000\n" BASE,
               "t.yaml:3: listen.admin: port 9000 of 0.0.0.0 is already taken by listen.client (127.0.0.1)");
    EXPECT_ERR("listen:\n  client: 127.0.0.1:8081\n" BASE,
               "t.yaml:2: listen.client: port 8081 of 127.0.0.1 is already taken by listen.admin (127.0.0.1)");
    EXPECT_OK("listen:\n  client: 127.0.0.1:9000\n  admin: 127.0.0.2:9000\n" BASE);
}
END_TEST

START_TEST(durations)
{
    static const struct {
        const char *value;
        long long ms;
    } good[] = {
        {"15m", 900000}, {"90s", 90000},     {"2h", 7200000},    {"500ms", 500},  {"1h30m", 5400000},
        {"120", 120000}, {"'15m'", 900000}, {"1m30s", 90000},    {"720h", 2592000000LL}, {"1ms", 1},
    };
    char yaml[1024];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(yaml, sizeof(yaml), BASE "order_timeout: %s\n", good[i].value);
        EXPECT_OK(yaml);
        ck_assert_int_eq(cfg.order_timeout_ms, good[i].ms);
    }
    static const struct {
        const char *value, *msg;
    } bad[] = {
        {"abc", "expected a duration like \"15m\", \"90s\", \"2h\", \"500ms\" or a number of seconds, got \"abc\""},
        {"'900'", "expected a duration like"},
        {"15x", "expected a duration like"},
        {"1.5h", "expected a duration like"},
        {"15 m", "expected a duration like"},
        {"m", "expected a duration like"},
        {"''", "expected a duration like"},
        {"", "expected a duration like \"15m\", \"90s\", \"2h\", \"500ms\" or a number of seconds, got nothing"},
        {"[15m]", "expected a duration like"},
        {"0", "must be more than 0, got 0"},
        {"-5", "must be more than 0, got -5"},
        {"0s", "must be more than 0, got \"0s\""},
        {"0h0m", "must be more than 0"},
        {"721h", "\"721h\" is more than the maximum of 2592000 seconds"},
        {"720h1ms", "\"720h1ms\" is more than the maximum"},
        {"99999999999999999999s", "\"99999999999999999999s\" is more than the maximum"},
        {"2592001", "2592001 seconds is more than the maximum of 2592000 seconds"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        snprintf(yaml, sizeof(yaml), BASE "order_timeout: %s\n", bad[i].value);
        snprintf(want, sizeof(want), "t.yaml:12: order_timeout: %s", bad[i].msg);
        EXPECT_ERR(yaml, want);
    }
}
END_TEST

START_TEST(plugin_config_json)
{
    EXPECT_OK(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    config:\n"
                           "      int: 42\n"
                           "      neg: -7\n"
                           "      big: 9007199254740993\n"
                           "      real: 1.5\n"
                           "      exp: 1e3\n"
                           "      t: true\n"
                           "      f: False\n"
                           "      n1: null\n"
                           "      n2: ~\n"
                           "      n3:\n"
                           "      qint: \"123\"\n"
                           "      qbool: 'true'\n"
                           "      qnull: ''\n"
                           "      tagged: !!str 5\n"
                           "      yes_is_a_string: yes\n"
                           "      hex_is_a_string: 0x10\n"
                           "      s: hello world\n"
                           "      nested: {a: [1, two, 3.25, {b: null}], c: {}}\n"
                           "      empty: []\n"
                           "      block: |\n        line1\n        line2\n"
                           "      unicode: \"caf\\u00e9\"\n");
    const char *want = "{\"int\":42,\"neg\":-7,\"big\":9007199254740993,\"real\":1.5,\"exp\":1000.0,"
                       "\"t\":true,\"f\":false,\"n1\":null,\"n2\":null,\"n3\":null,"
                       "\"qint\":\"123\",\"qbool\":\"true\",\"qnull\":\"\",\"tagged\":\"5\","
                       "\"yes_is_a_string\":\"yes\",\"hex_is_a_string\":\"0x10\",\"s\":\"hello world\","
                       "\"nested\":{\"a\":[1,\"two\",3.25,{\"b\":null}],\"c\":{}},\"empty\":[],"
                       "\"block\":\"line1\\nline2\\n\",\"unicode\":\"caf\xc3\xa9\"}";
    ck_assert_str_eq(cfg.stock.config_json, want);

    /* And the text parses back with the same types. */
    json_error_t jerr;
    json_t *j = json_loads(cfg.stock.config_json, 0, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    ck_assert(json_is_integer(json_object_get(j, "int")));
    ck_assert(json_is_real(json_object_get(j, "real")));
    ck_assert(json_is_true(json_object_get(j, "t")));
    ck_assert(json_is_false(json_object_get(j, "f")));
    ck_assert(json_is_null(json_object_get(j, "n2")));
    ck_assert(json_is_string(json_object_get(j, "qint")));
    json_decref(j);

#define PLUGIN_CONFIG(body) MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    config:\n" body
    EXPECT_ERR(PLUGIN_CONFIG("      n: 99999999999999999999\n"),
               "t.yaml:13: plugins.stock.config.n: 99999999999999999999 is out of range");
    EXPECT_ERR(PLUGIN_CONFIG("      x: .inf\n"),
               "t.yaml:13: plugins.stock.config.x: \".inf\" cannot be written in JSON");
    EXPECT_ERR(PLUGIN_CONFIG("      x: 1e999\n"), "t.yaml:13: plugins.stock.config.x: \"1e999\" cannot be written");
    EXPECT_ERR(PLUGIN_CONFIG("      list:\n        - 1\n        - {x: .nan}\n"),
               "t.yaml:15: plugins.stock.config.list[1].x: \".nan\" cannot be written in JSON");
    EXPECT_ERR(PLUGIN_CONFIG("      ? [k]\n      : 1\n"), "t.yaml:13: plugins.stock.config: expected a string key");
    EXPECT_ERR(PLUGIN_CONFIG("      x: !!int 5\n"), "t.yaml:13: the YAML tag \"tag:yaml.org,2002:int\" is not supported");
    EXPECT_ERR(PLUGIN_CONFIG("      a: &anchor 5\n      b: *anchor\n"),
               "t.yaml:14: YAML aliases (*\"anchor\") are not supported");
    /* Nesting is bounded. */
    char yaml[2048], deep[200];
    memset(deep, '[', 70);
    memset(deep + 70, ']', 70);
    deep[140] = '\0';
    snprintf(yaml, sizeof(yaml), PLUGIN_CONFIG("      x: %s\n"), deep);
    EXPECT_ERR(yaml, "t.yaml:13: nested deeper than 64 levels");
#undef PLUGIN_CONFIG
}
END_TEST

START_TEST(failure_leaves_nothing)
{
    /* A failure late in the walk, after plugin JSON was allocated: zeroed output, and
     * ASan (--enable-sanitizers) shows nothing leaked. */
    EXPECT_ERR(MARIADB AUTH "plugins:\n  stock:\n    name: redis\n    config: {a: 1}\n"
                            "  queue:\n    name: q\n    config: {b: [1]}\n"
                            "workers: 0\n",
               "t.yaml:16: workers: 0 is out of range");
    EXPECT_ERR(MARIADB "plugins:\n  stock:\n    name: redis\n    config: {a: 1}\n",
               "t.yaml:1: auth.jwt_secret: missing required key");
    /* Free is safe on a zeroed struct, twice. */
    sk_config_free(&cfg);
    sk_config_free(&cfg);
    EXPECT_OK(BASE);
    sk_config_free(&cfg);
    ck_assert(all_zero(&cfg, sizeof(cfg)));
    sk_config_free(&cfg);

    /* Text in memory need not end with a NUL. */
    const char text[] = BASE "workers: 2";
    char *copy = malloc(sizeof(text) - 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, sizeof(text) - 1);
    int rc = sk_config_load_string("mem", copy, sizeof(text) - 1, &cfg, err);
    free(copy);
    ck_assert_msg(rc == SK_OK, "%s", err);
    ck_assert_uint_eq(cfg.workers, 2);

    /* A file that is far too big is refused before it is parsed. */
    size_t big = 2 * 1024 * 1024;
    char *huge = malloc(big + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, '#', big);
    huge[big] = '\0';
    sk_config_free(&cfg);
    memset(&cfg, 0x5a, sizeof(cfg));
    rc = sk_config_load_string("huge.yaml", huge, big, &cfg, err);
    free(huge);
    ck_assert_int_eq(rc, SK_ERR);
    ck_assert_str_eq(err, "huge.yaml:1: the file is larger than 1048576 bytes; is it a config file?");
    ck_assert(all_zero(&cfg, sizeof(cfg)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, clear_env, free_cfg);
    tcase_add_test(tc, example_file_loads);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, every_key);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, empty_and_not_a_mapping);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, unknown_keys);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, out_of_range);
    tcase_add_test(tc, duplicate_keys);
    tcase_add_test(tc, missing_required);
    tcase_add_test(tc, names);
    tcase_add_test(tc, secrets_and_environment);
    tcase_add_test(tc, listen_addresses);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, plugin_config_json);
    tcase_add_test(tc, failure_leaves_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
