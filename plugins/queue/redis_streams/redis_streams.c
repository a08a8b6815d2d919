/*
 * The `redis_streams` queue plugin: the queue is the reservation logs that the
 * redis stock plugin already writes (one Redis stream per item, appended by the
 * reserve script in the same atomic step that takes the unit), read with a
 * consumer group by plugins/common/reslog.c. Nothing is copied: a reservation is
 * in the queue the moment it exists. The .so exports only `sk_plugin`.
 *
 * Config (the plugin's `config:` mapping), every key optional:
 *   host (127.0.0.1), port (6379), db (0), password (none), connect_timeout_ms
 *   (1000), command_timeout_ms (1000), key_prefix ("sk") — the same keys as the
 *   stock plugin's, and they must point at the same Redis and prefix —, group
 *   ("seckill-orders"), consumer ("<hostname>-<pid>-<random>"), claim_idle_ms
 *   (30000).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "redis_conf.h"
#include "redis_conn.h"
#include "reslog.h"
#include "say.h"

#define PLUGIN_VERSION "1.0.0"

/* The instance: the parsed config and the metrics, shared by every connection. */
struct rstreams {
    const struct sk_host *host;
    struct sk_reslog_conf conf;
    struct sk_rconn_metrics rm;
    struct sk_reslog_metrics m;
};

/* "<hostname>-<pid>-<random>": unique per process, so that a restarted daemon
 * never takes the pending entries of its former self as its own (they are
 * claimed after claim_idle_ms like any dead consumer's). */
static int default_consumer(char *out, size_t outlen, char *errbuf)
{
    char host[64];
    uint32_t rnd;

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        say(errbuf, "cannot pick a consumer name: no random bytes");
        return SK_ERR;
    }
    snprintf(out, outlen, "%s-%ld-%08x", host, (long)getpid(), (unsigned)rnd);
    return SK_OK;
}

/* Group and consumer names travel as Redis arguments and land in logs and
 * XINFO: printable, no spaces. */
static int name_ok(const char *key, const char *s, char *errbuf)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            say(errbuf, "config key %s: must not contain spaces or control characters", key);
            return SK_ERR;
        }
    }
    return SK_OK;
}

static int conf_parse(struct rstreams *rs, const char *text, char *errbuf)
{
    json_error_t jerr;
    json_t *root = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &jerr);
    struct sk_reslog_conf *c = &rs->conf;
    const char *key;
    json_t *v;
    long long n;
    int consumer_set = 0, rc = SK_ERR;

    if (root == NULL) {
        say(errbuf, "config is not valid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        say(errbuf, "config must be a mapping, not %s", sk_conf_type_name(root));
        goto out;
    }
    sk_rconf_defaults(&c->redis, c->key_prefix, sizeof(c->key_prefix));
    c->redis.client_name = "seckill-queue-redis-streams";
    snprintf(c->group, sizeof(c->group), "seckill-orders");
    c->claim_idle_ms = 30000;

    json_object_foreach(root, key, v)
    {
        int known = sk_rconf_key(&c->redis, c->key_prefix, sizeof(c->key_prefix), key, v, errbuf);
        if (known == SK_ERR)
            goto out;
        if (known == 1)
            continue;
        if (strcmp(key, "group") == 0) {
            if (sk_conf_str(key, v, 1, c->group, sizeof(c->group), errbuf) != SK_OK ||
                name_ok(key, c->group, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "consumer") == 0) {
            if (sk_conf_str(key, v, 1, c->consumer, sizeof(c->consumer), errbuf) != SK_OK ||
                name_ok(key, c->consumer, errbuf) != SK_OK)
                goto out;
            consumer_set = 1;
        } else if (strcmp(key, "claim_idle_ms") == 0) {
            if (sk_conf_int(key, v, 1, 86400000, &n, errbuf) != SK_OK)
                goto out;
            c->claim_idle_ms = (unsigned)n;
        } else {
            say(errbuf, "config key %s: unknown key (known: " SK_RCONF_KEYS ", group, consumer, claim_idle_ms)", key);
            goto out;
        }
    }
    if (!consumer_set && default_consumer(c->consumer, sizeof(c->consumer), errbuf) != SK_OK)
        goto out;
    if (sk_rconf_resolve(&c->redis, errbuf) != SK_OK)
        goto out;
    rc = SK_OK;
out:
    json_decref(root);
    return rc;
}

static int rs_create(const struct sk_host *host, void **instance, char *errbuf)
{
    struct rstreams *rs = calloc(1, sizeof(*rs));
    int rc = SK_ERR;

    if (rs == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    rs->host = host;
    if (conf_parse(rs, host->config_json, errbuf) != SK_OK)
        goto out;
    rs->rm.commands = host->counter(host, "commands_total", "Commands written to Redis.");
    rs->rm.errors = host->counter(host, "errors_total", "Redis commands and handshakes that failed.");
    rs->rm.reconnects = host->counter(host, "reconnects_total", "Connection attempts to Redis after the first.");
    rs->m.delivered = host->counter(host, "delivered_total", "Reservations delivered to the order writer.");
    rs->m.bad = host->counter(host, "bad_records_total", "Log entries that were not reservations (parked).");
    rs->m.acked = host->counter(host, "acked_total", "Log entries acknowledged (and deleted).");
    rs->m.claimed = host->counter(host, "claimed_total", "Log entries taken over from an idle consumer.");
    rs->m.appended = host->counter(host, "published_total", "Reservations appended by publish.");
    host->log(host, SK_LOG_INFO, "reservation logs at %s:%d db %d under \"%s:\", group \"%s\", consumer \"%s\"",
              rs->conf.redis.host_name, rs->conf.redis.port, rs->conf.redis.db, rs->conf.key_prefix, rs->conf.group,
              rs->conf.consumer);
    *instance = rs;
    rs = NULL;
    rc = SK_OK;
out:
    free(rs);
    return rc;
}

static void rs_destroy(void *instance)
{
    free(instance);
}

/* The connection is the reader itself. */
static int rs_attach(void *instance, uv_loop_t *loop, void **conn, char *errbuf)
{
    struct rstreams *rs = instance;
    struct sk_reslog *r;

    if (rs == NULL || loop == NULL || conn == NULL) {
        say(errbuf, "attach: missing argument");
        return SK_ERR;
    }
    if (sk_reslog_open(loop, &rs->conf, rs->host, &rs->rm, &r, errbuf) != SK_OK)
        return SK_ERR;
    sk_reslog_set_metrics(r, &rs->m);
    *conn = r;
    return SK_OK;
}

static void rs_detach(void *conn)
{
    sk_reslog_close(conn);
}

static int rs_ready(void *conn)
{
    return sk_reslog_ready(conn);
}

static int rs_publish(void *conn, const struct sk_reservation *records, size_t n, sk_queue_done_cb cb, void *arg)
{
    return sk_reslog_append(conn, records, n, cb, arg);
}

static int rs_consume(void *conn, const uint64_t *item_ids, size_t n_items, size_t max, unsigned wait_ms,
                      sk_queue_batch_cb cb, void *arg)
{
    return sk_reslog_read(conn, item_ids, n_items, max, wait_ms, cb, arg);
}

static int rs_ack(void *conn, void *ack_token, sk_queue_done_cb cb, void *arg)
{
    return sk_reslog_ack(conn, ack_token, cb, arg);
}

static void rs_nack(void *conn, void *ack_token)
{
    sk_reslog_nack(conn, ack_token);
}

static int rs_lag(void *conn, const uint64_t *item_ids, size_t n_items, sk_queue_lag_cb cb, void *arg)
{
    return sk_reslog_lag(conn, item_ids, n_items, cb, arg);
}

static const struct sk_queue_ops rs_ops = {
    .size = sizeof(struct sk_queue_ops),
    .attach = rs_attach,
    .detach = rs_detach,
    .ready = rs_ready,
    .publish = rs_publish,
    .consume = rs_consume,
    .ack = rs_ack,
    .nack = rs_nack,
    .lag = rs_lag,
};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "redis_streams",
    .version = PLUGIN_VERSION,
    .kind = SK_PLUGIN_QUEUE,
    .create = rs_create,
    .destroy = rs_destroy,
    .ops = &rs_ops,
};
