/*
 * The `alipay` payment plugin: trades at Alipay's OpenAPI gateway (or its sandbox,
 * or the project's emulator) over libcurl on the caller's loop, every request
 * RSA2-signed with the app's key and every answer and notify checked with
 * Alipay's public key. The .so exports only `sk_plugin`.
 *
 * This file: the descriptor, the config, the instance and the per-loop
 * connection. The verbs are in trade.c, notify verification in notify.c.
 * See docs/alipay.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <seckill/plugin.h>

#include "alipay.h"
#include "conf.h"
#include "say.h"
#include "sign.h"

#define PLUGIN_VERSION  "1.0.0"
#define SANDBOX_GATEWAY "https://openapi-sandbox.dl.alipaydev.com/gateway.do"
#define KNOWN_KEYS                                                                                                     \
    "gateway_url, app_id, app_private_key_file, alipay_public_key_file, notify_url, return_url, method, seller_id, "   \
    "timeout_ms, subject_prefix"

/* ---- config ------------------------------------------------------------- */

/* A string of minlen..outlen-1 bytes, no NUL, no control characters. */
static int conf_str(const char *key, const json_t *v, size_t minlen, char *out, size_t outlen, char *errbuf)
{
    const char *s;
    size_t len;

    if (!json_is_string(v)) {
        say(errbuf, "config key %s: must be a string, not %s", key, sk_conf_type_name(v));
        return SK_ERR;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len < minlen || len >= outlen || strlen(s) != len) {
        say(errbuf, "config key %s: must be %zu to %zu bytes without NUL", key, minlen, outlen - 1);
        return SK_ERR;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            say(errbuf, "config key %s: must not contain control characters", key);
            return SK_ERR;
        }
    }
    memcpy(out, s, len + 1);
    return SK_OK;
}

/* An identifier (app_id, seller_id): visible ASCII, no spaces. Alipay's ids are
 * all digits, so an unquoted YAML value arrives as a JSON integer: take its
 * digits (no id of Alipay's starts with 0). */
static int conf_id(const char *key, const json_t *v, char *out, size_t outlen, char *errbuf)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
        return SK_OK;
    }
    if (conf_str(key, v, 1, out, outlen, errbuf) != SK_OK)
        return SK_ERR;
    for (const char *s = out; *s; s++) {
        if (*s <= ' ' || *s > '~') {
            say(errbuf, "config key %s: \"%s\" must be letters and digits (as Alipay gives it), without spaces", key,
                out);
            return SK_ERR;
        }
    }
    return SK_OK;
}

static int conf_url(const char *key, const json_t *v, char *out, size_t outlen, char *errbuf)
{
    if (conf_str(key, v, 1, out, outlen, errbuf) != SK_OK)
        return SK_ERR;
    if ((strncmp(out, "http://", 7) != 0 || out[7] == '\0') && (strncmp(out, "https://", 8) != 0 || out[8] == '\0')) {
        say(errbuf, "config key %s: \"%s\" is not an http:// or https:// URL", key, out);
        return SK_ERR;
    }
    if (strpbrk(out, " #") != NULL) {
        say(errbuf, "config key %s: \"%s\" must not contain spaces or a fragment (#)", key, out);
        return SK_ERR;
    }
    return SK_OK;
}

static int conf_parse(struct alipay *ap, const char *text, char *errbuf)
{
    json_error_t jerr;
    json_t *root = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *v;
    char method[16] = "precreate";
    int rc = SK_ERR;

    if (root == NULL) {
        say(errbuf, "config is not valid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        say(errbuf, "config must be a mapping, not %s", sk_conf_type_name(root));
        goto out;
    }
    snprintf(ap->gateway_url, sizeof(ap->gateway_url), "%s", SANDBOX_GATEWAY);
    ap->timeout_ms = 10000;
    json_object_foreach(root, key, v)
    {
        int r;
        if (strcmp(key, "gateway_url") == 0) {
            r = conf_url(key, v, ap->gateway_url, sizeof(ap->gateway_url), errbuf);
        } else if (strcmp(key, "app_id") == 0) {
            r = conf_id(key, v, ap->app_id, sizeof(ap->app_id), errbuf);
        } else if (strcmp(key, "app_private_key_file") == 0) {
            r = conf_str(key, v, 1, ap->app_key_file, sizeof(ap->app_key_file), errbuf);
        } else if (strcmp(key, "alipay_public_key_file") == 0) {
            r = conf_str(key, v, 1, ap->alipay_key_file, sizeof(ap->alipay_key_file), errbuf);
        } else if (strcmp(key, "notify_url") == 0) {
            r = conf_url(key, v, ap->notify_url, sizeof(ap->notify_url), errbuf);
        } else if (strcmp(key, "return_url") == 0) {
            r = json_is_null(v) ? SK_OK : conf_url(key, v, ap->return_url, sizeof(ap->return_url), errbuf);
        } else if (strcmp(key, "method") == 0) {
            r = conf_str(key, v, 1, method, sizeof(method), errbuf);
            if (r != SK_OK || (strcmp(method, "precreate") != 0 && strcmp(method, "page") != 0)) {
                say(errbuf, "config key method: must be \"precreate\" (a QR code) or \"page\" (a payment page URL)");
                r = SK_ERR;
            }
        } else if (strcmp(key, "seller_id") == 0) {
            r = json_is_null(v) ? SK_OK : conf_id(key, v, ap->seller_id, sizeof(ap->seller_id), errbuf);
        } else if (strcmp(key, "timeout_ms") == 0) {
            r = SK_OK;
            if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 600000) {
                if (json_is_integer(v))
                    say(errbuf, "config key timeout_ms: %lld is out of range (100 to 600000)",
                        (long long)json_integer_value(v));
                else
                    say(errbuf, "config key timeout_ms: must be an integer from 100 to 600000, not %s",
                        sk_conf_type_name(v));
                r = SK_ERR;
            } else {
                ap->timeout_ms = (unsigned)json_integer_value(v);
            }
        } else if (strcmp(key, "subject_prefix") == 0) {
            r = conf_str(key, v, 0, ap->subject_prefix, sizeof(ap->subject_prefix), errbuf);
        } else {
            say(errbuf, "config key %s: unknown key (known: %s)", key, KNOWN_KEYS);
            r = SK_ERR;
        }
        if (r != SK_OK)
            goto out;
    }
    ap->method = strcmp(method, "page") == 0 ? AL_PAGE : AL_PRECREATE;
    if (ap->app_id[0] == '\0') {
        say(errbuf, "config key app_id: required (the app's id at Alipay, e.g. \"2021000000000000\")");
        goto out;
    }
    if (ap->app_key_file[0] == '\0') {
        say(errbuf, "config key app_private_key_file: required (the PEM file of the app's RSA private key)");
        goto out;
    }
    if (ap->alipay_key_file[0] == '\0') {
        say(errbuf, "config key alipay_public_key_file: required (the PEM file of Alipay's public key)");
        goto out;
    }
    if (ap->notify_url[0] == '\0') {
        say(errbuf, "config key notify_url: required (where the gateway posts notifies, e.g. "
                    "\"http://shop.example.com/api/v1/pay/notify/alipay\")");
        goto out;
    }
    rc = SK_OK;
out:
    json_decref(root);
    return rc;
}

/* ---- instance ----------------------------------------------------------- */

static void alipay_destroy(void *instance)
{
    struct alipay *ap = instance;
    if (ap == NULL)
        return;
    EVP_PKEY_free(ap->app_key);
    EVP_PKEY_free(ap->alipay_key);
    free(ap);
    curl_global_cleanup();
}

static int alipay_create(const struct sk_host *host, void **instance, char *errbuf)
{
    struct alipay *ap = NULL;
    char why[SK_ERRLEN];
    int rc = SK_ERR;

    /* Here, on the main thread before any loop runs: curl's global set-up is not
     * safe to race with. Paired with the cleanup in destroy(). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        say(errbuf, "cannot initialise libcurl");
        return SK_ERR;
    }
    ap = calloc(1, sizeof(*ap));
    if (ap == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    ap->host = host;
    if (conf_parse(ap, host->config_json, errbuf) != SK_OK)
        goto out;
    if (al_key_read(ap->app_key_file, 1, &ap->app_key, why) != SK_OK) {
        say(errbuf, "config key app_private_key_file: %s", why);
        goto out;
    }
    if (al_key_read(ap->alipay_key_file, 0, &ap->alipay_key, why) != SK_OK) {
        say(errbuf, "config key alipay_public_key_file: %s", why);
        goto out;
    }
    ap->requests = host->counter(host, "requests_total", "Requests sent to the Alipay gateway.");
    ap->errors = host->counter(host, "errors_total", "Verbs that failed (network, gateway error, bad answer).");
    ap->notifies = host->counter(host, "notifies_total", "Notifies that verified.");
    ap->notifies_refused =
        host->counter(host, "notifies_refused_total", "Notifies refused (signature, app id, malformed).");
    host->log(host, SK_LOG_INFO, "alipay app %s at %s, %s, timeout %u ms", ap->app_id, ap->gateway_url,
              ap->method == AL_PAGE ? "alipay.trade.page.pay" : "alipay.trade.precreate", ap->timeout_ms);
    *instance = ap;
    ap = NULL;
    rc = SK_OK;
out:
    if (rc != SK_OK && ap != NULL)
        alipay_destroy(ap); /* cleans curl up too */
    else if (rc != SK_OK)
        curl_global_cleanup();
    return rc;
}

/* ---- connection --------------------------------------------------------- */

static void conn_handle_closed(struct al_conn *c)
{
    if (--c->handles == 0)
        free(c);
}

static void on_http_closed(void *arg)
{
    conn_handle_closed(arg);
}

static void on_idle_closed(uv_handle_t *h)
{
    conn_handle_closed(h->data);
}

static int alipay_attach(void *instance, uv_loop_t *loop, void **conn, char *errbuf)
{
    struct al_conn *c = calloc(1, sizeof(*c));
    int rc = SK_ERR;

    if (c == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    c->ap = instance;
    c->loop = loop;
    if (uv_idle_init(loop, &c->idle) != 0) {
        say(errbuf, "cannot make an idle handle on the loop");
        goto out;
    }
    c->idle.data = c;
    c->handles = 1;
    if (sk_chttp_open(loop, &c->http, errbuf) != SK_OK) {
        uv_close((uv_handle_t *)&c->idle, on_idle_closed); /* frees c */
        c = NULL;
        goto out;
    }
    c->handles = 2;
    *conn = c;
    c = NULL;
    rc = SK_OK;
out:
    free(c);
    return rc;
}

static void alipay_detach(void *conn)
{
    struct al_conn *c = conn;
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    /* Results already known go out as they are; requests in flight fail. */
    al_deliver(c);
    uv_idle_stop(&c->idle);
    uv_close((uv_handle_t *)&c->idle, on_idle_closed);
    sk_chttp_close(c->http, on_http_closed, c);
}

/* There is no standing connection to the gateway (each verb is one HTTPS request,
 * kept alive by curl when it can): ready means attached and not closing. Making
 * it depend on the last request would take a daemon out of a balancer for one
 * failed call, with nothing to bring it back. */
static int alipay_ready(void *conn)
{
    const struct al_conn *c = conn;
    return c != NULL && !c->closing;
}

static const struct sk_payment_ops alipay_ops = {
    .size = sizeof(struct sk_payment_ops),
    .attach = alipay_attach,
    .detach = alipay_detach,
    .ready = alipay_ready,
    .create = al_trade_create,
    .query = al_trade_query,
    .close = al_trade_close,
    .refund = al_trade_refund,
    .verify_notify = al_verify_notify,
    .notify_ok = "success",
    .notify_fail = "fail",
    .notify_content_type = "text/plain",
};

SK_PLUGIN_DECLARE = {
    .abi_major = SK_PLUGIN_ABI_MAJOR,
    .abi_minor = SK_PLUGIN_ABI_MINOR,
    .magic = SK_PLUGIN_MAGIC,
    .name = "alipay",
    .version = PLUGIN_VERSION,
    .kind = SK_PLUGIN_PAYMENT,
    .create = alipay_create,
    .destroy = alipay_destroy,
    .ops = &alipay_ops,
};
