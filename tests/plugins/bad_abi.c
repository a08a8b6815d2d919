/* Test plugin: built for the next ABI major version. The host must refuse it on
 * the version fields alone, so nothing past them needs to be usable. */
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
    .abi_major = SK_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .magic = SK_PLUGIN_MAGIC,
    .name = "bad_abi",
    .version = "test",
    .kind = SK_PLUGIN_STOCK,
    .create = t_create,
    .destroy = t_destroy,
    .ops = &ops,
};
