/* Test plugin: a queue plugin (right ABI, right magic) that a config names as the
 * stock plugin. The host must refuse it before it reads the ops table, whose
 * layout belongs to another kind. */
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

/* Only the size that every ops table starts with: this host has no queue verbs. */
static const struct {
    size_t size;
} ops = {sizeof(ops)};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "wrong_kind",
    .version = "test",
    .kind = SK_PLUGIN_QUEUE,
    .create = t_create,
    .destroy = t_destroy,
    .ops = &ops,
};
