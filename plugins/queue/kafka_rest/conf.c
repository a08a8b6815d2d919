/*
 * The kafka_rest config section: every key is checked for its type and range,
 * unknown keys are refused, and the error names the key (docs/kafka.md lists them).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kafka_rest.h"
#include "redis_conf.h"
#include "say.h"

static int get_uint(const char *key, const json_t *v, long long min, long long max, unsigned *out, char *errbuf)
{
    long long n;
    if (sk_conf_int(key, v, min, max, &n, errbuf) != SK_OK)
        return SK_ERR;
    *out = (unsigned)n;
    return SK_OK;
}

/* Kafka's legal topic characters; group and consumer names are held to the same
 * set, since they become parts of URL paths (and file names in the emulator). */
static int get_name(const char *key, const json_t *v, char *out, size_t outlen, char *errbuf)
{
    if (sk_conf_str(key, v, 1, out, outlen, errbuf) != SK_OK)
        return SK_ERR;
    if (strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(out)) {
        say(errbuf, "config key %s: \"%s\" may hold only letters, digits, '.', '_' and '-'", key, out);
        return SK_ERR;
    }
    return SK_OK;
}

static int get_bool(const char *key, const json_t *v, int *out, char *errbuf)
{
    if (!json_is_boolean(v)) {
        say(errbuf, "config key %s: must be true or false, not %s", key, sk_conf_type_name(v));
        return SK_ERR;
    }
    *out = json_is_true(v);
    return SK_OK;
}

/* "<hostname>-<pid>-<random>": unique per daemon, and legal as a consumer name. */
static void default_instance(char *out, size_t outlen)
{
    char host[64] = "seckill";
    uint32_t rnd = 0;

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "seckill");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p) == NULL)
            *p = '_';
    }
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    snprintf(out, outlen, "%s-%ld-%08x", host[0] ? host : "seckill", (long)getpid(), rnd);
}

static int check_url(struct kr_conf *c, char *errbuf)
{
    size_t n = strlen(c->url);
    if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        say(errbuf, "config key url: \"%s\" must start with http:// or https://", c->url);
        return SK_ERR;
    }
    if (strpbrk(c->url, " \t\r\n?#") != NULL) {
        say(errbuf, "config key url: \"%s\" must be a base URL without spaces, query or fragment", c->url);
        return SK_ERR;
    }
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    const char *hostpart = strstr(c->url, "://") + 3;
    if (*hostpart == '\0' || *hostpart == '/') {
        say(errbuf, "config key url: no host in \"%s\"", c->url);
        return SK_ERR;
    }
    return SK_OK;
}

int kr_conf_parse(const char *text, struct kr_conf *c, char *errbuf)
{
    json_error_t jerr;
    json_t *root = json_loads(text != NULL ? text : "{}", JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *v;
    long long n;
    int rc = SK_ERR, have_url = 0, have_topic = 0;
    struct sk_rconn_conf *r = &c->reslog.redis;

    if (root == NULL) {
        say(errbuf, "config is not valid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        say(errbuf, "config must be a mapping, not %s", sk_conf_type_name(root));
        goto out;
    }
    memset(c, 0, sizeof(*c));
    snprintf(c->group, sizeof(c->group), "seckill-orders");
    c->timeout_ms = 5000;
    c->fetch_timeout_ms = 1000;
    c->max_bytes = 8388608; /* a burst of records per fetch */
    c->flavour = KR_CONFLUENT;
    c->retry_initial_ms = 100;
    c->retry_max_ms = 5000;
    c->relay = 1;
    c->relay_batch = 5000; /* relayed per consume: fewer, larger produces in a burst */
    sk_rconf_defaults(r, c->reslog.key_prefix, sizeof(c->reslog.key_prefix));
    r->client_name = "seckill-queue-kafka-rest";
    snprintf(c->reslog.group, sizeof(c->reslog.group), "seckill-kafka-relay");
    c->reslog.claim_idle_ms = 30000;

    json_object_foreach(root, key, v)
    {
        /* The stock plugin's Redis keys, by the same names (a YAML anchor can share
         * its section): where the reservation logs are. */
        int shared = sk_rconf_key(r, c->reslog.key_prefix, sizeof(c->reslog.key_prefix), key, v, errbuf);
        if (shared == SK_ERR)
            goto out;
        if (shared == 1)
            continue;
        if (strcmp(key, "url") == 0) {
            if (sk_conf_str(key, v, 1, c->url, sizeof(c->url), errbuf) != SK_OK || check_url(c, errbuf) != SK_OK)
                goto out;
            have_url = 1;
        } else if (strcmp(key, "topic") == 0) {
            if (get_name(key, v, c->topic, sizeof(c->topic), errbuf) != SK_OK)
                goto out;
            have_topic = 1;
        } else if (strcmp(key, "group") == 0) {
            if (get_name(key, v, c->group, sizeof(c->group), errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "instance") == 0) {
            if (get_name(key, v, c->instance, sizeof(c->instance), errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (get_uint(key, v, 1, 600000, &c->timeout_ms, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "fetch_timeout_ms") == 0) {
            if (get_uint(key, v, 0, 300000, &c->fetch_timeout_ms, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "max_bytes") == 0) {
            if (sk_conf_int(key, v, 1024, 64 * 1024 * 1024, &n, errbuf) != SK_OK)
                goto out;
            c->max_bytes = (long)n;
        } else if (strcmp(key, "flavour") == 0) {
            char f[32];
            if (sk_conf_str(key, v, 1, f, sizeof(f), errbuf) != SK_OK)
                goto out;
            if (strcmp(f, "confluent") == 0)
                c->flavour = KR_CONFLUENT;
            else if (strcmp(f, "redpanda") == 0)
                c->flavour = KR_REDPANDA;
            else {
                say(errbuf, "config key flavour: \"%s\" is neither \"confluent\" nor \"redpanda\"", f);
                goto out;
            }
        } else if (strcmp(key, "retry_initial_ms") == 0) {
            if (get_uint(key, v, 1, 600000, &c->retry_initial_ms, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "retry_max_ms") == 0) {
            if (get_uint(key, v, 1, 600000, &c->retry_max_ms, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "relay") == 0) {
            if (get_bool(key, v, &c->relay, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "relay_batch") == 0) {
            if (get_uint(key, v, 1, 10000, &c->relay_batch, errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "relay_group") == 0) {
            if (get_name(key, v, c->reslog.group, sizeof(c->reslog.group), errbuf) != SK_OK)
                goto out;
        } else if (strcmp(key, "claim_idle_ms") == 0) {
            if (get_uint(key, v, 1, 86400000, &c->reslog.claim_idle_ms, errbuf) != SK_OK)
                goto out;
        } else {
            say(errbuf,
                "config key %s: unknown key (known: url, topic, group, instance, timeout_ms, "
                "fetch_timeout_ms, max_bytes, flavour, retry_initial_ms, retry_max_ms, relay, relay_batch, "
                "relay_group, claim_idle_ms, " SK_RCONF_KEYS ")",
                key);
            goto out;
        }
    }
    if (!have_url) {
        say(errbuf, "config key url: missing (the REST proxy's base URL, e.g. http://127.0.0.1:8082)");
        goto out;
    }
    if (!have_topic) {
        say(errbuf, "config key topic: missing (the Kafka topic of the reservations)");
        goto out;
    }
    if (c->retry_max_ms < c->retry_initial_ms) {
        say(errbuf, "config key retry_max_ms: %u is less than retry_initial_ms (%u)", c->retry_max_ms,
            c->retry_initial_ms);
        goto out;
    }
    if (c->instance[0] == '\0')
        default_instance(c->instance, sizeof(c->instance));
    if (c->relay && sk_rconf_resolve(r, errbuf) != SK_OK)
        goto out;
    rc = SK_OK;
out:
    if (root != NULL)
        json_decref(root);
    return rc;
}
