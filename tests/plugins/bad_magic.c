/* Test plugin: exports `sk_plugin` but its magic is wrong, as a foreign module that
 * happens to use the same symbol name would. The host must not trust anything in it. */
#include <seckill/plugin.h>

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = 0x46554e4bu, /* "FUNK" */
    .name = "bad_magic",
    .version = "test",
    .kind = SK_PLUGIN_STOCK,
};
