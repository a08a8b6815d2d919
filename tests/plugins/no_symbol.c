/* Test plugin: a shared object that loads fine but exports no `sk_plugin` (here a
 * descriptor under another name, as an old or foreign module would). */
#include <seckill/plugin.h>

SK_PLUGIN_EXPORT const struct sk_plugin seckill_plugin_descriptor = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "no_symbol",
    .version = "test",
    .kind = SK_PLUGIN_STOCK,
};
