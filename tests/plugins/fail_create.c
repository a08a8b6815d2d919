/* Test plugin: a well-formed stock plugin whose create() always refuses, the way a
 * plugin refuses a bad config section. Before refusing it uses the host table (log
 * and a counter), so the suite can see what the host gave it, and its sentence
 * quotes the config it received. Its verbs are never reached: no instance exists. */
#include <stdio.h>

#include <seckill/plugin.h>

static int t_create(const struct sk_host *host, void **instance, char *errbuf)
{
    struct sk_metric *m = host->counter(host, "create_failures_total", "create() calls refused by the test plugin");
    if (m != NULL)
        host->metric_add(m, 1);
    host->log(host, SK_LOG_WARN, "refusing to start (as this test plugin always does), config at %s",
              host->config_where);
    snprintf(errbuf, SK_ERRLEN, "config key always: this test plugin refuses every config, got %s", host->config_json);
    return SK_ERR;
}

static void t_destroy(void *instance)
{
    (void)instance;
}

static int t_attach(void *instance, uv_loop_t *loop, void **conn, char *errbuf)
{
    snprintf(errbuf, SK_ERRLEN, "fail_create never has an instance to attach");
    return SK_ERR;
}

static void t_detach(void *conn)
{
    (void)conn;
}

static int t_ready(void *conn)
{
    return 0;
}

static int t_publish(void *conn, const struct sk_stock_item *item, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_query(void *conn, uint64_t item_id, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_set_state(void *conn, uint64_t item_id, enum sk_stock_state state, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_add_units(void *conn, uint64_t item_id, int64_t units, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_reserve(void *conn, const struct sk_reserve_req *req, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_release(void *conn, uint64_t item_id, uint64_t user_id, const char *order_no, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static int t_get_order(void *conn, uint64_t item_id, const char *order_no, sk_stock_cb cb, void *arg)
{
    return SK_ERR;
}

static const struct sk_stock_ops ops = {
    .size = sizeof(struct sk_stock_ops),
    .attach = t_attach,
    .detach = t_detach,
    .ready = t_ready,
    .publish = t_publish,
    .query = t_query,
    .set_state = t_set_state,
    .add_units = t_add_units,
    .reserve = t_reserve,
    .release = t_release,
    .get_order = t_get_order,
};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "fail_create",
    .version = "test",
    .kind = SK_PLUGIN_STOCK,
    .create = t_create,
    .destroy = t_destroy,
    .ops = &ops,
};
