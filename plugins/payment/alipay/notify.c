/*
 * Alipay's asynchronous notify: a form-encoded POST signed with Alipay's key.
 * Verified as the official SDKs do (decode; drop sign and sign_type and empty
 * values; sort; join; SHA256withRSA; then the "V2" string that keeps sign_type),
 * then checked against our app (and seller), then parsed. Nothing is written to
 * the caller's struct unless everything passed. CPU only; any thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <seckill/plugin.h>

#include "alipay.h"
#include "params.h"
#include "say.h"
#include "sign.h"

#define NOTIFY_MAX (64 * 1024) /* real notifies are about 1 KiB */
#define FORM_TYPE  "application/x-www-form-urlencoded"

/* A form content type, with or without parameters ("; charset=utf-8"). */
static int form_type(const char *ct)
{
    size_t n = strlen(FORM_TYPE);
    if (ct == NULL || strncasecmp(ct, FORM_TYPE, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* The value of a field that must be there, non-empty and shorter than max bytes
 * of visible ASCII; NULL (with why) otherwise. */
static const char *required(const struct al_params *p, const char *name, size_t max, char *why)
{
    const char *v = al_params_get(p, name);
    size_t n = v != NULL ? strlen(v) : 0;

    if (n == 0) {
        say(why, "alipay notify: no %s", name);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= ' ' || v[i] > '~' || n >= max) {
            say(why, "alipay notify: %s \"%.64s\" is not 1 to %zu visible ASCII characters", name, v, max - 1);
            return NULL;
        }
    }
    return v;
}

static int check(const struct alipay *ap, const char *content_type, const char *body, size_t len,
                 struct sk_pay_notify *n, char *why)
{
    struct al_params p;
    const char *sig, *v, *status, *amount, *order_no, *trade_no, *app_id, *notify_id, *paid;
    char *content = NULL, detail[SK_ERRLEN];
    int rc = SK_ERR;

    al_params_init(&p);
    if (!form_type(content_type)) {
        say(why, "alipay notify: the content type must be " FORM_TYPE ", not %.64s",
            content_type != NULL && content_type[0] != '\0' ? content_type : "none");
        goto out;
    }
    if (body == NULL || len == 0 || len > NOTIFY_MAX) {
        say(why, "alipay notify: the body must be 1 to %d bytes, not %zu", NOTIFY_MAX, body == NULL ? 0 : len);
        goto out;
    }
    if (al_params_decode(body, len, &p, detail) != SK_OK) {
        say(why, "alipay notify: %s", detail);
        goto out;
    }
    sig = al_params_get(&p, "sign");
    if (sig == NULL || sig[0] == '\0') {
        say(why, "alipay notify: not signed (no sign)");
        goto out;
    }
    v = al_params_get(&p, "sign_type");
    if (v != NULL && v[0] != '\0' && strcmp(v, "RSA2") != 0) {
        say(why, "alipay notify: sign_type %.16s is not RSA2", v);
        goto out;
    }
    v = al_params_get(&p, "charset");
    if (v != NULL && v[0] != '\0' && strcasecmp(v, "utf-8") != 0) {
        say(why, "alipay notify: charset %.16s is not utf-8", v);
        goto out;
    }
    content = al_params_sign_content(&p, 0);
    if (content == NULL) {
        say(why, "out of memory");
        goto out;
    }
    if (al_verify(ap->alipay_key, content, strlen(content), sig, detail) != SK_OK) {
        /* The "V2" string, with sign_type kept, that the SDKs also accept. */
        free(content);
        content = al_params_sign_content(&p, 1);
        if (content == NULL || al_params_get(&p, "sign_type") == NULL ||
            al_verify(ap->alipay_key, content, strlen(content), sig, detail) != SK_OK) {
            say(why, "alipay notify: bad signature: %s (alipay_public_key_file %.128s)", detail, ap->alipay_key_file);
            goto out;
        }
    }
    /* Signed by Alipay; now, is it for us, and is it well-formed? */
    app_id = required(&p, "app_id", sizeof(n->app_id), why);
    if (app_id == NULL)
        goto out;
    if (strcmp(app_id, ap->app_id) != 0) {
        say(why, "alipay notify: app_id %.64s is not ours (%s)", app_id, ap->app_id);
        goto out;
    }
    if (ap->seller_id[0] != '\0') {
        v = al_params_get(&p, "seller_id");
        if (v == NULL || strcmp(v, ap->seller_id) != 0) {
            say(why, "alipay notify: seller_id %.64s is not ours (%s)", v != NULL ? v : "(none)", ap->seller_id);
            goto out;
        }
    }
    order_no = required(&p, "out_trade_no", sizeof(n->order_no), why);
    trade_no = order_no != NULL ? required(&p, "trade_no", sizeof(n->trade_no), why) : NULL;
    notify_id = trade_no != NULL ? required(&p, "notify_id", sizeof(n->notify_id), why) : NULL;
    status = notify_id != NULL ? required(&p, "trade_status", 32, why) : NULL;
    amount = status != NULL ? required(&p, "total_amount", AL_YUAN_MAX, why) : NULL;
    if (amount == NULL)
        goto out;
    if (strcmp(status, "WAIT_BUYER_PAY") == 0) {
        n->status = SK_TRADE_WAITING;
    } else if (strcmp(status, "TRADE_SUCCESS") == 0 || strcmp(status, "TRADE_FINISHED") == 0) {
        n->status = SK_TRADE_PAID;
    } else if (strcmp(status, "TRADE_CLOSED") == 0) {
        n->status = SK_TRADE_CLOSED;
    } else {
        say(why, "alipay notify: unknown trade_status %s", status);
        goto out;
    }
    if (al_yuan_parse(amount, &n->amount_cents) != SK_OK) {
        say(why, "alipay notify: total_amount \"%s\" is not an amount in yuan", amount);
        goto out;
    }
    n->paid_at_ms = 0;
    if (n->status == SK_TRADE_PAID) {
        /* gmt_payment, or the notify's own time when a gateway leaves it out. */
        const char *field = al_params_get(&p, "gmt_payment") != NULL ? "gmt_payment" : "notify_time";
        paid = al_params_get(&p, field);
        if (paid == NULL || al_china_time_parse(paid, &n->paid_at_ms) != SK_OK) {
            say(why, "alipay notify: %s \"%.32s\" is not a time \"yyyy-MM-dd HH:mm:ss\"", field,
                paid != NULL ? paid : "");
            goto out;
        }
    }
    snprintf(n->order_no, sizeof(n->order_no), "%s", order_no);
    snprintf(n->trade_no, sizeof(n->trade_no), "%s", trade_no);
    snprintf(n->app_id, sizeof(n->app_id), "%s", app_id);
    snprintf(n->notify_id, sizeof(n->notify_id), "%s", notify_id);
    rc = SK_OK;
out:
    free(content);
    al_params_free(&p);
    return rc;
}

int al_verify_notify(void *instance, const char *content_type, const char *body, size_t len, struct sk_pay_notify *out,
                     char *errbuf)
{
    struct alipay *ap = instance;
    struct sk_pay_notify n;
    char why[SK_ERRLEN];
    int rc = SK_ERR;

    if (ap == NULL || out == NULL || errbuf == NULL)
        return SK_ERR;
    memset(&n, 0, sizeof(n));
    if (check(ap, content_type, body, len, &n, why) != SK_OK) {
        say(errbuf, "%s", why);
        ap->host->metric_add(ap->notifies_refused, 1);
        goto out;
    }
    *out = n;
    ap->host->metric_add(ap->notifies, 1);
    rc = SK_OK;
out:
    return rc;
}
