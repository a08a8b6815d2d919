/*
 * The plugin host: dlopen a plugin, check its descriptor field by field (each
 * refusal a sentence naming the file), then create its instance with the host
 * table. See include/seckill/plugin.h for the rules and docs/plugins.md.
 */
#include "plugin_host.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define WHO "plugin"
#define METRIC_NAME_MAX 200

/* The sentence of a refusal, in err (SK_ERRLEN bytes); a very long path cuts off
 * its tail rather than failing. */
static void say(char *err, const char *fmt, ...) SK_PRINTF(2, 3);

static void say(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SK_ERRLEN, fmt, ap);
    va_end(ap);
}

/* How large each kind's ops table was in ABI 1.0: a plugin's table may be larger
 * (built against a newer minor), never smaller. 0 for kinds whose verbs this host
 * does not know yet. */
static size_t ops_size_1_0(enum sk_plugin_kind kind)
{
    switch (kind) {
    case SK_PLUGIN_STOCK:
        return sizeof(struct sk_stock_ops);
    case SK_PLUGIN_QUEUE:
        return sizeof(struct sk_queue_ops);
    case SK_PLUGIN_PAYMENT:
        return sizeof(struct sk_payment_ops);
    }
    return 0;
}

const char *sk_plugin_kind_name(enum sk_plugin_kind kind)
{
    switch (kind) {
    case SK_PLUGIN_STOCK:
        return "stock";
    case SK_PLUGIN_QUEUE:
        return "queue";
    case SK_PLUGIN_PAYMENT:
        return "payment";
    }
    return "unknown";
}

void sk_plugin_path(const struct sk_config *cfg, const struct sk_plugin_conf *pc, enum sk_plugin_kind kind, char *out,
                    size_t outlen)
{
    const char *path = pc->path;
    char buf[1100];

    if (path[0] == '\0') {
        snprintf(buf, sizeof(buf), "%s/%s_%s.so", cfg->plugin_dir[0] ? cfg->plugin_dir : SK_PLUGIN_DIR,
                 sk_plugin_kind_name(kind), pc->name);
        path = buf;
    }
    /* Without a slash dlopen() would search the library path instead of the file. */
    snprintf(out, outlen, "%s%s", strchr(path, '/') != NULL ? "" : "./", path);
}

/* ---- the host table ----------------------------------------------------- */

static void host_log(const struct sk_host *host, enum sk_log_level level, const char *fmt, ...) SK_PRINTF(3, 4);

static void host_log(const struct sk_host *host, enum sk_log_level level, const char *fmt, ...)
{
    const struct sk_loaded_plugin *p = host->host_data;
    va_list ap;
    /* A plugin's level indexes the host's names: keep it in range. */
    if ((int)level < SK_LOG_ERROR)
        level = SK_LOG_ERROR;
    if ((int)level > SK_LOG_DEBUG)
        level = SK_LOG_DEBUG;
    va_start(ap, fmt);
    sk_logv(level, p->log_name, fmt, ap);
    va_end(ap);
}

/* Prometheus names: [a-zA-Z_:][a-zA-Z0-9_:]*, and ours never use ':'. */
static int metric_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 100 || isdigit((unsigned char)name[0]))
        return 0;
    for (const char *s = name; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    }
    return 1;
}

static struct sk_metric *host_metric(const struct sk_host *host, const char *name, const char *help, int counter)
{
    const struct sk_loaded_plugin *p = host->host_data;
    char full[METRIC_NAME_MAX];

    if (!metric_name_ok(name))
        return NULL;
    snprintf(full, sizeof(full), "seckill_plugin_%s_%s", p->desc->name, name);
    if (help == NULL)
        help = "";
    return counter ? sk_metric_counter(full, "", help) : sk_metric_gauge(full, "", help);
}

static struct sk_metric *host_counter(const struct sk_host *host, const char *name, const char *help)
{
    return host_metric(host, name, help, 1);
}

static struct sk_metric *host_gauge(const struct sk_host *host, const char *name, const char *help)
{
    return host_metric(host, name, help, 0);
}

static void host_metric_add(struct sk_metric *m, int64_t delta)
{
    if (m != NULL)
        sk_metric_add(m, delta);
}

static void host_metric_set(struct sk_metric *m, int64_t value)
{
    if (m != NULL)
        sk_metric_set(m, value);
}

/* ---- loading ------------------------------------------------------------ */

/* The checks that only read the descriptor. The first refusal wins. */
static int check_desc(const struct sk_loaded_plugin *p, const struct sk_plugin_conf *pc, enum sk_plugin_kind kind,
                      char *err)
{
    const struct sk_plugin *d = p->desc;
    const char *want = sk_plugin_kind_name(kind);
    size_t min_ops;

    /* magic, abi_major and abi_minor sit in the first 8 bytes in every ABI. */
    if (d->magic != SK_PLUGIN_MAGIC) {
        say(err, "%s: bad magic 0x%08x in %s (expected 0x%08x): not a seckill plugin", p->path, (unsigned)d->magic,
            SK_PLUGIN_SYMBOL, (unsigned)SK_PLUGIN_MAGIC);
        return SK_ERR;
    }
    if (d->abi_major != SK_PLUGIN_ABI_MAJOR) {
        say(err,
            "%s: plugin ABI %u.%u does not match this seckill's ABI %u.%u (the major versions differ): "
            "rebuild the plugin against this seckill's <seckill/plugin.h>",
            p->path, d->abi_major, d->abi_minor, SK_PLUGIN_ABI_MAJOR, SK_PLUGIN_ABI_MINOR);
        return SK_ERR;
    }
    if (d->abi_minor > SK_PLUGIN_ABI_MINOR) {
        say(err,
            "%s: plugin ABI %u.%u is newer than this seckill's ABI %u.%u: upgrade seckill or rebuild the "
            "plugin against this seckill's <seckill/plugin.h>",
            p->path, d->abi_major, d->abi_minor, SK_PLUGIN_ABI_MAJOR, SK_PLUGIN_ABI_MINOR);
        return SK_ERR;
    }
    if (d->kind != SK_PLUGIN_STOCK && d->kind != SK_PLUGIN_QUEUE && d->kind != SK_PLUGIN_PAYMENT) {
        say(err, "%s: plugin \"%s\" declares an unknown kind %d, configured as %s", p->path, d->name ? d->name : "?",
            (int)d->kind, want);
        return SK_ERR;
    }
    if (d->kind != kind) {
        say(err, "%s: plugin \"%s\" is a %s plugin, configured as %s", p->path, d->name ? d->name : "?",
            sk_plugin_kind_name(d->kind), want);
        return SK_ERR;
    }
    if (d->name == NULL || strcmp(d->name, pc->name) != 0) {
        say(err, "%s: the plugin calls itself \"%s\", but the config names it \"%s\"", p->path,
            d->name ? d->name : "(no name)", pc->name);
        return SK_ERR;
    }
    if (d->create == NULL || d->destroy == NULL) {
        say(err, "%s: plugin \"%s\" has no %s() in its descriptor", p->path, d->name,
            d->create == NULL ? "create" : "destroy");
        return SK_ERR;
    }
    min_ops = ops_size_1_0(kind);
    if (min_ops == 0) {
        say(err, "%s: this seckill cannot run %s plugins yet", p->path, want);
        return SK_ERR;
    }
    if (d->ops == NULL) {
        say(err, "%s: plugin \"%s\" has no ops table", p->path, d->name);
        return SK_ERR;
    }
    if (*(const size_t *)d->ops < min_ops) {
        say(err, "%s: plugin \"%s\" has a %s ops table of %zu bytes, ABI %u.0 needs at least %zu", p->path, d->name,
            want, *(const size_t *)d->ops, SK_PLUGIN_ABI_MAJOR, min_ops);
        return SK_ERR;
    }
    if (kind == SK_PLUGIN_STOCK) {
        const struct sk_stock_ops *o = d->ops;
        if (!o->attach || !o->detach || !o->ready || !o->publish || !o->query || !o->set_state || !o->add_units ||
            !o->reserve || !o->release || !o->get_order) {
            say(err, "%s: plugin \"%s\" leaves verbs of its stock ops table empty", p->path, d->name);
            return SK_ERR;
        }
    }
    if (kind == SK_PLUGIN_PAYMENT) {
        const struct sk_payment_ops *o = d->ops;
        if (!o->attach || !o->detach || !o->ready || !o->create || !o->query || !o->close || !o->refund ||
            !o->verify_notify || !o->notify_ok || !o->notify_fail || !o->notify_content_type) {
            say(err, "%s: plugin \"%s\" leaves verbs of its payment ops table empty", p->path, d->name);
            return SK_ERR;
        }
    }
    if (kind == SK_PLUGIN_QUEUE) {
        const struct sk_queue_ops *o = d->ops;
        if (!o->attach || !o->detach || !o->ready || !o->publish || !o->consume || !o->ack || !o->nack || !o->lag) {
            say(err, "%s: plugin \"%s\" leaves verbs of its queue ops table empty", p->path, d->name);
            return SK_ERR;
        }
    }
    return SK_OK;
}

static int name_ok(const char *name)
{
    if (name[0] == '\0')
        return 0;
    for (const char *s = name; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    }
    return 1;
}

int sk_plugin_load(const struct sk_config *cfg, const struct sk_plugin_conf *pc, enum sk_plugin_kind kind,
                   struct sk_loaded_plugin *out, char *err)
{
    char cerr[SK_ERRLEN];
    const char *dlerr;
    void *sym;

    memset(out, 0, sizeof(*out));
    sk_plugin_path(cfg, pc, kind, out->path, sizeof(out->path));
    /* The name goes into file names and metric names. */
    if (!name_ok(pc->name)) {
        say(err, "%s: %s plugin name \"%s\" must be letters, digits and _", pc->where, sk_plugin_kind_name(kind),
            pc->name);
        goto fail;
    }
    out->dl = dlopen(out->path, RTLD_NOW | RTLD_LOCAL);
    if (out->dl == NULL) {
        dlerr = dlerror();
        say(err, "%s: cannot load %s plugin \"%s\": %s", out->path, sk_plugin_kind_name(kind), pc->name,
            dlerr ? dlerr : "unknown error");
        goto fail;
    }
    dlerror();
    sym = dlsym(out->dl, SK_PLUGIN_SYMBOL);
    if (sym == NULL) {
        dlerr = dlerror();
        say(err, "%s: no symbol \"%s\": not a seckill plugin (%s)", out->path, SK_PLUGIN_SYMBOL,
            dlerr ? dlerr : "symbol is NULL");
        goto fail;
    }
    out->desc = sym;
    if (check_desc(out, pc, kind, err) != SK_OK)
        goto fail;

    snprintf(out->log_name, sizeof(out->log_name), "plugin %s", out->desc->name);
    out->host.config_json = strdup(pc->config_json ? pc->config_json : "{}");
    out->host.config_where = strdup(pc->where);
    if (out->host.config_json == NULL || out->host.config_where == NULL) {
        say(err, "%s: out of memory", out->path);
        goto fail;
    }
    out->host.size = sizeof(out->host);
    out->host.abi_major = SK_PLUGIN_ABI_MAJOR;
    out->host.abi_minor = SK_PLUGIN_ABI_MINOR;
    out->host.log = host_log;
    out->host.counter = host_counter;
    out->host.gauge = host_gauge;
    out->host.metric_add = host_metric_add;
    out->host.metric_set = host_metric_set;
    out->host.host_data = out;

    cerr[0] = '\0';
    if (out->desc->create(&out->host, &out->instance, cerr) != SK_OK) {
        cerr[SK_ERRLEN - 1] = '\0';
        say(err, "%s: %s plugin \"%s\" %s refused its config (%s): %s", out->path, sk_plugin_kind_name(kind),
            out->desc->name, out->desc->version ? out->desc->version : "", pc->where,
            cerr[0] ? cerr : "create() failed without saying why");
        out->instance = NULL;
        goto fail;
    }
    sk_info(WHO, "loaded %s plugin %s %s (ABI %u.%u) from %s", sk_plugin_kind_name(kind), out->desc->name,
            out->desc->version ? out->desc->version : "", out->desc->abi_major, out->desc->abi_minor, out->path);
    return SK_OK;
fail:
    free((char *)out->host.config_json);
    free((char *)out->host.config_where);
    if (out->dl != NULL)
        dlclose(out->dl);
    memset(out, 0, sizeof(*out));
    return SK_ERR;
}

void sk_plugin_unload(struct sk_loaded_plugin *p)
{
    if (p->desc != NULL && p->instance != NULL)
        p->desc->destroy(p->instance);
    free((char *)p->host.config_json);
    free((char *)p->host.config_where);
    if (p->dl != NULL)
        dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}
