/*
 * The plugin host: loads a plugin .so with dlopen, checks its descriptor and makes
 * an instance of it with the host table (logger, metrics, config section).
 */
#ifndef SK_PLUGIN_HOST_H
#define SK_PLUGIN_HOST_H

#include <seckill/plugin.h>

#include "config.h"

/* A loaded plugin with its instance. Owned by whoever called sk_plugin_load. */
struct sk_loaded_plugin {
    void *dl;                         /* dlopen handle */
    const struct sk_plugin *desc;     /* inside the .so; valid while dl is open */
    void *instance;                   /* from desc->create */
    struct sk_host host;              /* what the plugin was given */
    char path[512];
    char log_name[96];                /* "plugin redis" */
};

/* Resolve the .so path of a plugin entry: its `path:` if set, else
 * "<plugin_dir>/<kind>_<name>.so". Writes into out (outlen bytes). */
void sk_plugin_path(const struct sk_config *cfg, const struct sk_plugin_conf *pc, enum sk_plugin_kind kind,
                    char *out, size_t outlen);

/* Load the plugin of `kind` described by `pc`, check it and create its instance.
 * On failure return SK_ERR with a sentence that names the file in err (SK_ERRLEN
 * bytes); nothing stays loaded and *out is zeroed. On success *out is filled in and
 * owned by the caller until sk_plugin_unload; it must not move or be copied
 * meanwhile, since the plugin keeps a pointer to out->host. The config section and
 * its "file:line" are copied, so cfg may be freed after this returns. */
int sk_plugin_load(const struct sk_config *cfg, const struct sk_plugin_conf *pc, enum sk_plugin_kind kind,
                   struct sk_loaded_plugin *out, char *err);
/* Destroy the instance and dlclose. Safe on a zeroed struct. */
void sk_plugin_unload(struct sk_loaded_plugin *p);

/* The stock ops table of a loaded stock plugin. */
static inline const struct sk_stock_ops *sk_plugin_stock_ops(const struct sk_loaded_plugin *p)
{
    return (const struct sk_stock_ops *)p->desc->ops;
}

/* The queue ops table of a loaded queue plugin. */
static inline const struct sk_queue_ops *sk_plugin_queue_ops(const struct sk_loaded_plugin *p)
{
    return (const struct sk_queue_ops *)p->desc->ops;
}

/* The payment ops table of a loaded payment plugin. */
static inline const struct sk_payment_ops *sk_plugin_payment_ops(const struct sk_loaded_plugin *p)
{
    return (const struct sk_payment_ops *)p->desc->ops;
}

const char *sk_plugin_kind_name(enum sk_plugin_kind kind);

#endif
