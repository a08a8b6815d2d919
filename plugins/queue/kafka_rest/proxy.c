/*
 * One call to the REST proxy (../shared/reference/kafka-rest.md): the URL, the
 * content types, the error body {"error_code":…,"message":…} turned into a
 * sentence, and the proxy's health. A transport failure or a 5xx answer marks the
 * proxy down: verbs then fail at once, without a request, and a probe
 * (GET /topics) retries after a back-off that doubles from retry_initial_ms to
 * retry_max_ms; the first answer brings the proxy back.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_rest.h"
#include "say.h"

#define CT_V2      "application/vnd.kafka.v2+json"
#define CT_JSON    "application/vnd.kafka.json.v2+json"
#define MAX_ANSWER (8u * 1024 * 1024)

struct call {
    struct kr_conn *c;
    kr_answer_cb cb;
    void *arg;
    char what[160]; /* "POST /topics/orders", for messages */
};

/* "METHOD path" of a URL, for messages: the part after the host. */
static void describe(char *out, size_t outlen, const char *method, const char *url)
{
    const char *p = strstr(url, "://");
    p = p != NULL ? strchr(p + 3, '/') : NULL;
    snprintf(out, outlen, "%s %.120s", method, p != NULL ? p : "/");
}

static void on_http(void *arg, const struct sk_chttp_resp *resp)
{
    struct call *x = arg;
    struct kr_conn *c = x->c;
    struct kr_answer a = {.ok = 0, .status = resp->status};
    char err[SK_ERRLEN];

    if (resp->status == 0) {
        say(err, "kafka rest proxy at %s: %s: %s", c->k->conf.url, x->what, resp->err);
        a.err = err;
        if (!c->closing)
            kr_proxy_down(c, err);
    } else {
        if (resp->len > 0)
            a.json = json_loadb(resp->body, resp->len, 0, NULL);
        if (resp->status >= 200 && resp->status < 300) {
            a.ok = 1;
        } else {
            const json_t *code = json_object_get(a.json, "error_code");
            const json_t *msg = json_object_get(a.json, "message");
            a.error_code = json_is_integer(code) ? (long)json_integer_value(code) : 0;
            if (json_is_string(msg))
                say(err, "kafka rest proxy: %s: HTTP %ld (error_code %ld): %s", x->what, resp->status, a.error_code,
                    json_string_value(msg));
            else
                say(err, "kafka rest proxy: %s: HTTP %ld: %.120s", x->what, resp->status,
                    resp->len > 0 ? resp->body : "(no body)");
            a.err = err;
        }
        if (resp->status >= 500) {
            if (!c->closing)
                kr_proxy_down(c, err);
        } else {
            c->up = 1;
            c->backoff_ms = 0;
        }
    }
    if (!a.ok)
        c->k->host->metric_add(c->k->http_errors, 1);
    x->cb(x->arg, &a);
    if (a.json != NULL)
        json_decref(a.json);
    free(x);
    kr_conn_unref(c);
}

int kr_call(struct kr_conn *c, const char *method, const char *url, const char *content_type, const char *accept,
            const char *body, unsigned extra_ms, kr_answer_cb cb, void *arg, char *errbuf)
{
    struct call *x = NULL;
    char full[KR_URL_MAX * 2];
    int rc = SK_ERR;

    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        snprintf(full, sizeof(full), "%s", url);
    else
        snprintf(full, sizeof(full), "%s%s", c->k->conf.url, url);
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    describe(x->what, sizeof(x->what), method, full);
    struct sk_chttp_req req = {
        .method = method,
        .url = full,
        .content_type = content_type,
        .accept = accept,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = c->k->conf.timeout_ms + extra_ms,
        .max_answer = MAX_ANSWER,
    };
    if (sk_chttp_request(c->http, &req, on_http, x, errbuf) != SK_OK)
        goto out;
    kr_conn_ref(c);
    x = NULL;
    rc = SK_OK;
out:
    free(x);
    return rc;
}

/* ---- health ------------------------------------------------------------------ */

int kr_proxy_ok(struct kr_conn *c, char *errbuf)
{
    if (c->up)
        return 1;
    if (c->down_why[0] != '\0')
        say(errbuf, "kafka rest proxy unavailable, retrying: %s", c->down_why);
    else
        say(errbuf, "kafka rest proxy at %s not reached yet", c->k->conf.url);
    return 0;
}

static void schedule_probe(struct kr_conn *c);

static void on_probe(void *arg, const struct kr_answer *a)
{
    struct kr_conn *c = arg;
    c->probing = 0;
    if (c->closing) {
        /* detached: no more probes */
    } else if (a->status > 0 && a->status < 500) {
        if (c->down_why[0] != '\0')
            c->k->host->log(c->k->host, SK_LOG_INFO, "kafka rest proxy at %s is back", c->k->conf.url);
        c->down_why[0] = '\0';
        c->up = 1;
        c->backoff_ms = 0;
    } else {
        schedule_probe(c);
    }
}

void kr_proxy_probe(struct kr_conn *c)
{
    char err[SK_ERRLEN];
    if (c->probing || c->closing) {
        /* one at a time, and none after detach */
    } else if (kr_call(c, "GET", "/topics", NULL, CT_V2, NULL, 0, on_probe, c, err) == SK_OK) {
        c->probing = 1;
    } else {
        c->k->host->log(c->k->host, SK_LOG_WARN, "cannot probe the kafka rest proxy: %s", err);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    kr_proxy_probe(t->data);
}

/* The next probe, after a back-off that doubles up to retry_max_ms. */
static void schedule_probe(struct kr_conn *c)
{
    const struct kr_conf *conf = &c->k->conf;
    if (!c->closing && !c->probing && !uv_is_active((uv_handle_t *)&c->probe_timer)) {
        if (c->backoff_ms == 0)
            c->backoff_ms = conf->retry_initial_ms;
        else
            c->backoff_ms = c->backoff_ms * 2 > conf->retry_max_ms ? conf->retry_max_ms : c->backoff_ms * 2;
        uv_timer_start(&c->probe_timer, on_probe_timer, c->backoff_ms, 0);
    }
}

void kr_proxy_down(struct kr_conn *c, const char *why)
{
    /* Say it once per outage, not once per failed call. */
    if (c->up || c->down_why[0] == '\0')
        c->k->host->log(c->k->host, SK_LOG_WARN, "%s (verbs fail until it answers again)", why);
    snprintf(c->down_why, sizeof(c->down_why), "%s", why);
    c->up = 0;
    schedule_probe(c);
}

/* ---- produce ------------------------------------------------------------------ */

struct produce {
    struct kr_conn *c;
    size_t n;
    kr_produce_cb cb;
    void *arg;
};

static void on_produced(void *arg, const struct kr_answer *a)
{
    struct produce *p = arg;
    struct kr *k = p->c->k;
    char err[SK_ERRLEN] = "";
    const json_t *offsets = json_object_get(a->json, "offsets");
    size_t i, failed = 0;

    if (!a->ok) {
        say(err, "%s", a->err);
    } else if (!json_is_array(offsets) || json_array_size(offsets) != p->n) {
        say(err, "kafka rest proxy: produce to %s: the answer has %zu offsets for %zu records", k->conf.topic,
            json_is_array(offsets) ? json_array_size(offsets) : 0, p->n);
    } else {
        for (i = 0; i < p->n; i++) {
            const json_t *o = json_array_get(offsets, i);
            const json_t *part = json_object_get(o, "partition"), *off = json_object_get(o, "offset");
            const json_t *code = json_object_get(o, "error_code"), *msg = json_object_get(o, "error");
            if (json_is_integer(part) && json_is_integer(off) && (code == NULL || json_is_null(code))) {
                kr_mark(k, (int32_t)json_integer_value(part), json_integer_value(off));
                continue;
            }
            if (failed++ == 0)
                say(err,
                    "kafka rest proxy: produce to %s: record %zu of %zu failed (error_code %" JSON_INTEGER_FORMAT
                    "): %s",
                    k->conf.topic, i + 1, p->n, json_is_integer(code) ? json_integer_value(code) : 0,
                    json_is_string(msg) ? json_string_value(msg) : "no offset in the answer");
        }
        if (failed > 1) {
            size_t len = strlen(err);
            snprintf(err + len, sizeof(err) - len, " (and %zu more)", failed - 1);
        }
        k->host->metric_add(k->produced, (int64_t)(p->n - failed));
    }
    p->cb(p->arg, err[0] ? SK_ERR : SK_OK, err[0] ? err : NULL);
    free(p);
}

int kr_produce(struct kr_conn *c, json_t *records, kr_produce_cb cb, void *arg, char *errbuf)
{
    struct produce *p = NULL;
    char path[KR_NAME_MAX + 16];
    char *body = NULL;
    int rc = SK_ERR;
    json_t *root = json_pack("{s:o}", "records", records); /* steals records */

    if (root == NULL || (body = json_dumps(root, JSON_COMPACT)) == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
        say(errbuf, "out of memory");
        goto out;
    }
    p->c = c;
    p->n = json_array_size(records);
    p->cb = cb;
    p->arg = arg;
    snprintf(path, sizeof(path), "/topics/%s", c->k->conf.topic);
    if (kr_call(c, "POST", path, CT_JSON, CT_V2, body, 0, on_produced, p, errbuf) != SK_OK)
        goto out;
    p = NULL;
    rc = SK_OK;
out:
    free(p);
    free(body);
    if (root != NULL)
        json_decref(root);
    return rc;
}
