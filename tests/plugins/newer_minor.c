/* Test plugin: same ABI major, but a minor version newer than the host's. It may
 * use verbs the host does not have, so the host must refuse it. */
#include <seckill/plugin.h>

static int t_create(const struct sk_host *host, void **instance, char *errbuf)
{
    *instance = (void *)host;
    return SK_OK;
}

static void t_destroy(void *instance)
{
    (void)instance;
}

static const struct sk_stock_ops ops = {.size = sizeof(struct sk_stock_ops)};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR + 1,
    .magic = SK_PLUGIN_MAGIC,
    .name = "newer_minor",
    .version = "test",
    .kind = SK_PLUGIN_STOCK,
    .create = t_create,
    .destroy = t_destroy,
    .ops = &ops,
};
