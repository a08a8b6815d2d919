/*
 * The plugin host (core/plugin_host.c): every broken test plugin under
 * tests/plugins/ is refused with a sentence that names its file and its defect, and
 * nothing stays loaded; the real redis stock plugin loads, gets a working host
 * table, exports nothing but `sk_plugin`, and refuses a bad config section.
 *
 * Finds the test plugins in $SK_TEST_PLUGIN_DIR and the real ones in
 * $SK_PLUGIN_BUILD_DIR (both set by `make check`).
 */
#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seckill/plugin.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/plugin_host.h"

static const char *dir_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static const char *test_plugin_dir(void)
{
    return dir_env("SK_TEST_PLUGIN_DIR", SK_TEST_BUILDDIR "/tests/plugins/.libs");
}

static const char *plugin_build_dir(void)
{
    return dir_env("SK_PLUGIN_BUILD_DIR", SK_TEST_BUILDDIR "/plugins/.libs");
}

/* A config with one plugin entry; the JSON is owned by pc as in a real config. */
static void entry(struct sk_config *cfg, struct sk_plugin_conf *pc, const char *name, const char *path,
                  const char *json)
{
    memset(cfg, 0, sizeof(*cfg));
    memset(pc, 0, sizeof(*pc));
    snprintf(cfg->plugin_dir, sizeof(cfg->plugin_dir), "%s", test_plugin_dir());
    pc->present = 1;
    snprintf(pc->name, sizeof(pc->name), "%s", name);
    if (path != NULL)
        snprintf(pc->path, sizeof(pc->path), "%s", path);
    pc->config_json = strdup(json ? json : "{}");
    ck_assert_ptr_nonnull(pc->config_json);
    snprintf(pc->where, sizeof(pc->where), "test.yaml:7");
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

/* Load the test plugin `file` (tests/plugins/<file>.so) under config name `name`
 * and expect a refusal; returns the sentence. */
static void expect_refusal(const char *file, const char *name, char *err)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char path[600];

    snprintf(path, sizeof(path), "%s/%s.so", test_plugin_dir(), file);
    entry(&cfg, &pc, name, path, NULL);
    memset(&p, 0xab, sizeof(p));
    ck_assert_int_eq(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
    ck_assert_msg(all_zero(&p, sizeof(p)), "a refused plugin left *out filled in");
    ck_assert_msg(strstr(err, path) != NULL, "the refusal does not name the file: %s", err);
    free(pc.config_json);
}

START_TEST(refuses_wrong_abi_major)
{
    char err[SK_ERRLEN], want[64];
    expect_refusal("bad_abi", "bad_abi", err);
    snprintf(want, sizeof(want), "plugin ABI %d.0", SK_PLUGIN_ABI_MAJOR + 1);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    snprintf(want, sizeof(want), "ABI %d.%d", SK_PLUGIN_ABI_MAJOR, SK_PLUGIN_ABI_MINOR);
    ck_assert_msg(strstr(err, want) != NULL, "the host's version is missing: %s", err);
    ck_assert_msg(strstr(err, "major versions differ") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_newer_abi_minor)
{
    char err[SK_ERRLEN], want[64];
    expect_refusal("newer_minor", "newer_minor", err);
    snprintf(want, sizeof(want), "plugin ABI %d.%d is newer than this seckill's ABI %d.%d", SK_PLUGIN_ABI_MAJOR,
             SK_PLUGIN_ABI_MINOR + 1, SK_PLUGIN_ABI_MAJOR, SK_PLUGIN_ABI_MINOR);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_wrong_kind)
{
    char err[SK_ERRLEN];
    expect_refusal("wrong_kind", "wrong_kind", err);
    ck_assert_msg(strstr(err, "plugin \"wrong_kind\" is a queue plugin, configured as stock") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_missing_symbol)
{
    char err[SK_ERRLEN];
    expect_refusal("no_symbol", "no_symbol", err);
    ck_assert_msg(strstr(err, "no symbol \"sk_plugin\": not a seckill plugin") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_bad_magic)
{
    char err[SK_ERRLEN];
    expect_refusal("bad_magic", "bad_magic", err);
    ck_assert_msg(strstr(err, "bad magic 0x46554e4b") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "not a seckill plugin") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_failing_create)
{
    struct sk_metric *failures =
        sk_metric_counter("seckill_plugin_fail_create_create_failures_total", "", "create() calls refused");
    int64_t before = sk_metric_value(failures);
    char err[SK_ERRLEN];
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char path[600];

    snprintf(path, sizeof(path), "%s/fail_create.so", test_plugin_dir());
    entry(&cfg, &pc, "fail_create", path, "{\"always\":true}");
    ck_assert_int_eq(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
    ck_assert_msg(all_zero(&p, sizeof(p)), "a refused plugin left *out filled in");
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    /* The plugin's own sentence, which quotes the config section it was given. */
    ck_assert_msg(strstr(err, "config key always: this test plugin refuses every config, got {\"always\":true}"), "%s",
                  err);
    ck_assert_msg(strstr(err, "test.yaml:7") != NULL, "the config's place is missing: %s", err);
    /* It counted through the host table, under the plugin's prefix. */
    ck_assert_int_eq(sk_metric_value(failures), before + 1);
    free(pc.config_json);
}
END_TEST

START_TEST(refuses_missing_file)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN];

    entry(&cfg, &pc, "redis", "/nonexistent/seckill/stock_redis.so", NULL);
    ck_assert_int_eq(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
    ck_assert_msg(all_zero(&p, sizeof(p)), "a refused plugin left *out filled in");
    ck_assert_msg(strstr(err, "/nonexistent/seckill/stock_redis.so: cannot load stock plugin \"redis\"") != NULL, "%s",
                  err);
    ck_assert_msg(strstr(err, "No such file or directory") != NULL, "dlerror's text is missing: %s", err);
    free(pc.config_json);
}
END_TEST

START_TEST(refuses_name_mismatch)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN], path[600];

    snprintf(path, sizeof(path), "%s/stock_redis.so", plugin_build_dir());
    entry(&cfg, &pc, "other", path, NULL);
    ck_assert_int_eq(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
    ck_assert_msg(all_zero(&p, sizeof(p)), "a refused plugin left *out filled in");
    ck_assert_msg(strstr(err, "the plugin calls itself \"redis\", but the config names it \"other\"") != NULL, "%s",
                  err);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    free(pc.config_json);
}
END_TEST

START_TEST(refuses_bad_plugin_name)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN];

    entry(&cfg, &pc, "../../tmp/x", "", NULL);
    ck_assert_int_eq(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err), SK_ERR);
    ck_assert_msg(strstr(err, "test.yaml:7: stock plugin name \"../../tmp/x\" must be letters, digits and _"), "%s",
                  err);
    free(pc.config_json);
}
END_TEST

START_TEST(resolves_paths)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    char out[512];

    entry(&cfg, &pc, "redis", NULL, NULL);
    snprintf(cfg.plugin_dir, sizeof(cfg.plugin_dir), "/opt/seckill/plugins");
    sk_plugin_path(&cfg, &pc, SK_PLUGIN_STOCK, out, sizeof(out));
    ck_assert_str_eq(out, "/opt/seckill/plugins/stock_redis.so");
    snprintf(pc.name, sizeof(pc.name), "kafka_rest");
    sk_plugin_path(&cfg, &pc, SK_PLUGIN_QUEUE, out, sizeof(out));
    ck_assert_str_eq(out, "/opt/seckill/plugins/queue_kafka_rest.so");
    /* No plugin_dir: the compiled-in one. */
    cfg.plugin_dir[0] = '\0';
    sk_plugin_path(&cfg, &pc, SK_PLUGIN_PAYMENT, out, sizeof(out));
    ck_assert_str_eq(out, SK_PLUGIN_DIR "/payment_kafka_rest.so");
    /* An explicit path wins; a bare file name is made relative so dlopen does not search. */
    snprintf(pc.path, sizeof(pc.path), "/x/y.so");
    sk_plugin_path(&cfg, &pc, SK_PLUGIN_STOCK, out, sizeof(out));
    ck_assert_str_eq(out, "/x/y.so");
    snprintf(pc.path, sizeof(pc.path), "mine.so");
    sk_plugin_path(&cfg, &pc, SK_PLUGIN_STOCK, out, sizeof(out));
    ck_assert_str_eq(out, "./mine.so");
    ck_assert_str_eq(sk_plugin_kind_name(SK_PLUGIN_STOCK), "stock");
    ck_assert_str_eq(sk_plugin_kind_name(SK_PLUGIN_QUEUE), "queue");
    ck_assert_str_eq(sk_plugin_kind_name(SK_PLUGIN_PAYMENT), "payment");
    free(pc.config_json);
}
END_TEST

START_TEST(loads_redis_plugin)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN] = "";

    /* Found by plugin_dir and the <kind>_<name>.so rule. */
    entry(&cfg, &pc, "redis", "", "{\"host\":\"127.0.0.1\",\"port\":6390,\"db\":3}");
    snprintf(cfg.plugin_dir, sizeof(cfg.plugin_dir), "%s", plugin_build_dir());
    ck_assert_msg(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err) == SK_OK, "%s", err);
    ck_assert_ptr_nonnull(p.dl);
    ck_assert_ptr_nonnull(p.instance);
    ck_assert_str_eq(p.desc->name, "redis");
    ck_assert_int_eq(p.desc->kind, SK_PLUGIN_STOCK);
    ck_assert_int_eq(p.desc->abi_major, SK_PLUGIN_ABI_MAJOR);
    ck_assert_str_eq(p.log_name, "plugin redis");
    ck_assert_uint_ge(sk_plugin_stock_ops(&p)->size, sizeof(struct sk_stock_ops));
    ck_assert_uint_eq(p.host.size, sizeof(struct sk_host));
    ck_assert_int_eq(p.host.abi_major, SK_PLUGIN_ABI_MAJOR);
    ck_assert_int_eq(p.host.abi_minor, SK_PLUGIN_ABI_MINOR);
    ck_assert_str_eq(p.host.config_where, "test.yaml:7");
    /* The host keeps its own copy of the section: the config may go away. */
    ck_assert_ptr_ne(p.host.config_json, pc.config_json);
    ck_assert_str_eq(p.host.config_json, pc.config_json);
    free(pc.config_json);
    pc.config_json = NULL;
    ck_assert_str_eq(p.host.config_json, "{\"host\":\"127.0.0.1\",\"port\":6390,\"db\":3}");
    sk_plugin_unload(&p);
    ck_assert_msg(all_zero(&p, sizeof(p)), "unload left *p filled in");
    sk_plugin_unload(&p); /* safe on a zeroed struct */
}
END_TEST

START_TEST(redis_exports_only_sk_plugin)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/stock_redis.so", plugin_build_dir());
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(dl != NULL, "%s", dlerror());
    ck_assert_ptr_nonnull(dlsym(dl, "sk_plugin"));
    /* Names that exist inside the plugin but must stay hidden. */
    static const char *const hidden[] = {"sk_rconn_open",     "sk_rconn_eval", "sk_rconn_close",
                                         "sk_rstock_scripts", "redis_create",  "redis_ops"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        ck_assert_msg(dlsym(dl, hidden[i]) == NULL, "%s is exported", hidden[i]);
    dlclose(dl);
}
END_TEST

START_TEST(host_table_works)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN] = "", path[600];

    snprintf(path, sizeof(path), "%s/stock_redis.so", plugin_build_dir());
    entry(&cfg, &pc, "redis", path, NULL);
    ck_assert_msg(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err) == SK_OK, "%s", err);
    const struct sk_host *h = &p.host;

    /* Counters and gauges land under seckill_plugin_<name>_ in the host's registry. */
    struct sk_metric *c = h->counter(h, "host_test_total", "a test counter");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(h->counter(h, "host_test_total", "a test counter"), c);
    ck_assert_ptr_eq(sk_metric_counter("seckill_plugin_redis_host_test_total", "", "a test counter"), c);
    int64_t before = sk_metric_value(c);
    h->metric_add(c, 3);
    ck_assert_int_eq(sk_metric_value(c), before + 3);
    struct sk_metric *g = h->gauge(h, "host_test_level", NULL);
    ck_assert_ptr_nonnull(g);
    h->metric_set(g, 42);
    ck_assert_int_eq(sk_metric_value(g), 42);
    h->metric_set(g, 7);
    ck_assert_int_eq(sk_metric_value(g), 7);
    /* Bad names get NULL, and NULL handles are ignored. */
    ck_assert_ptr_null(h->counter(h, "", "x"));
    ck_assert_ptr_null(h->counter(h, NULL, "x"));
    ck_assert_ptr_null(h->counter(h, "9lives", "x"));
    ck_assert_ptr_null(h->gauge(h, "with-dash", "x"));
    ck_assert_ptr_null(h->gauge(h, "with space", "x"));
    h->metric_add(NULL, 1);
    h->metric_set(NULL, 1);
    /* The log accepts levels out of range without reading past the host's names. */
    h->log(h, SK_LOG_INFO, "host table test %d", 1);
    h->log(h, (enum sk_log_level)99, "a level out of range is logged as debug");
    h->log(h, (enum sk_log_level) - 3, "a negative level is logged as an error");
    sk_plugin_unload(&p);
    free(pc.config_json);
}
END_TEST

/* A redis plugin entry with a bad config section: refused, with the plugin's own
 * sentence, and nothing stays loaded. */
static void expect_bad_config(const char *json, const char *sentence)
{
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    char err[SK_ERRLEN] = "", path[600];

    snprintf(path, sizeof(path), "%s/stock_redis.so", plugin_build_dir());
    entry(&cfg, &pc, "redis", path, json);
    ck_assert_msg(sk_plugin_load(&cfg, &pc, SK_PLUGIN_STOCK, &p, err) == SK_ERR, "config %s was accepted", json);
    ck_assert_msg(all_zero(&p, sizeof(p)), "a refused plugin left *out filled in");
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "refused its config (test.yaml:7)") != NULL, "%s", err);
    ck_assert_msg(strstr(err, sentence) != NULL, "config %s: want \"%s\" in \"%s\"", json, sentence, err);
    free(pc.config_json);
}

START_TEST(redis_refuses_bad_config)
{
    expect_bad_config("{\"bogus\":1}", "config key bogus: unknown key");
    expect_bad_config("{\"port\":\"6379\"}", "config key port: must be an integer from 1 to 65535, not a string");
    expect_bad_config("{\"port\":70000}", "config key port: 70000 is out of range (1 to 65535)");
    expect_bad_config("{\"port\":6379.5}", "config key port: must be an integer");
    expect_bad_config("{\"db\":-1}", "config key db: -1 is out of range");
    expect_bad_config("{\"host\":5}", "config key host: must be a string, not an integer");
    expect_bad_config("{\"host\":\"\"}", "config key host: must be 1 to 255 bytes");
    expect_bad_config("{\"password\":[1]}", "config key password: must be a string, not a list");
    expect_bad_config("{\"connect_timeout_ms\":0}", "config key connect_timeout_ms: 0 is out of range");
    expect_bad_config("{\"command_timeout_ms\":true}", "config key command_timeout_ms: must be an integer");
    expect_bad_config("{\"key_prefix\":\"a{b}\"}", "config key key_prefix: must not contain braces or spaces");
    expect_bad_config("{\"key_prefix\":\"\"}", "config key key_prefix: must be 1 to 63 bytes");
    expect_bad_config("[1,2]", "config must be a mapping, not a list");
    expect_bad_config("{\"port\":", "config is not valid JSON");
    expect_bad_config("{\"port\":1,\"port\":2}", "config is not valid JSON");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_host");
    TCase *refuse = tcase_create("refusals");
    tcase_add_test(refuse, refuses_wrong_abi_major);
    tcase_add_test(refuse, refuses_newer_abi_minor);
    tcase_add_test(refuse, refuses_wrong_kind);
    tcase_add_test(refuse, refuses_missing_symbol);
    tcase_add_test(refuse, refuses_bad_magic);
    tcase_add_test(refuse, refuses_failing_create);
    tcase_add_test(refuse, refuses_missing_file);
    tcase_add_test(refuse, refuses_name_mismatch);
    tcase_add_test(refuse, refuses_bad_plugin_name);
    tcase_add_test(refuse, redis_refuses_bad_config);
    suite_add_tcase(s, refuse);
    TCase *load = tcase_create("loading");
    tcase_add_test(load, resolves_paths);
    tcase_add_test(load, loads_redis_plugin);
    tcase_add_test(load, redis_exports_only_sk_plugin);
    tcase_add_test(load, host_table_works);
    suite_add_tcase(s, load);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
