/*
 * The trade verbs: each builds the OpenAPI request (common parameters plus
 * biz_content), signs it with the app's key (RSA2), posts it to the gateway on the
 * connection's loop, and reads the answer only after its signature verified with
 * Alipay's public key over the exact text of the `…_response` value.
 *
 * Business errors that the caller acts on (ACQ.TRADE_NOT_EXIST, ACQ.TRADE_STATUS_ERROR)
 * are taken only from signed answers: an unsigned error answer (the gateway does
 * not sign some, e.g. for an unknown app) is reported as a failure, never as a
 * trade status.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "alipay.h"
#include "params.h"
#include "say.h"
#include "sign.h"

#define M_PRECREATE "alipay.trade.precreate"
#define M_PAGE_PAY  "alipay.trade.page.pay"
#define M_QUERY     "alipay.trade.query"
#define M_CLOSE     "alipay.trade.close"
#define M_REFUND    "alipay.trade.refund"

#define CODE_OK           "10000"
#define CODE_BUSY         "20000"
#define AMOUNT_MAX_CENTS  10000000000LL /* 100,000,000.00 yuan: Alipay's upper bound */
#define SUBJECT_MAX_CHARS 256
#define REASON_MAX_BYTES  256
#define ANSWER_MAX        (1024 * 1024)

enum verb { V_CREATE, V_QUERY, V_CLOSE, V_REFUND };

/* One verb from start to callback. Freed right after its callback. */
struct al_call {
    struct al_conn *c;
    struct al_call *next; /* in the connection's queue of known results */
    enum verb verb;
    const char *method; /* the OpenAPI method of the request in flight */
    sk_pay_cb cb;
    void *arg;
    char order_no[AL_ID_MAX];
    int64_t amount_cents; /* create: the trade's amount */
    int after_close;      /* a query made because close said ACQ.TRADE_STATUS_ERROR */
    /* A result known before any I/O, waiting in the queue: */
    int status;
    char err[SK_ERRLEN];
    char *pay_url;
};

/* A verified answer. */
struct answer {
    json_t *root;
    json_t *obj; /* the `…_response` (or `error_response`) object, inside root */
    const char *code, *msg, *sub_code, *sub_msg;
    int is_signed; /* the signature was there and verified */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ending a call ------------------------------------------------------- */

static void call_free(struct al_call *call)
{
    free(call->pay_url);
    free(call);
}

/* Run the callback now (we are on the loop) with a failure, then free the call. */
static void finish_err(struct al_call *call, const char *fmt, ...) SK_PRINTF(2, 3);

static void finish_err(struct al_call *call, const char *fmt, ...)
{
    struct alipay *ap = call->c->ap;
    char err[SK_ERRLEN];
    va_list va;

    va_start(va, fmt);
    vsnprintf(err, sizeof(err), fmt, va);
    va_end(va);
    ap->host->metric_add(ap->errors, 1);
    call->cb(call->arg, SK_ERR, NULL, err);
    call_free(call);
}

static void finish_ok(struct al_call *call, const struct sk_pay_result *res)
{
    call->cb(call->arg, SK_OK, res, NULL);
    call_free(call);
}

static void on_idle(uv_idle_t *h)
{
    struct al_conn *c = h->data;
    al_deliver(c);
    if (c->done_head == NULL && !c->closing)
        uv_idle_stop(&c->idle);
}

/* Queue a result known before any I/O; the idle handle delivers it from the loop. */
static void queue_result(struct al_call *call)
{
    struct al_conn *c = call->c;
    call->next = NULL;
    if (c->done_tail != NULL)
        c->done_tail->next = call;
    else
        c->done_head = call;
    c->done_tail = call;
    uv_idle_start(&c->idle, on_idle);
}

/* Queue a refusal of the caller's input: reported through the callback, like any
 * other failure, and nothing was sent. */
static void queue_err(struct al_call *call, const char *fmt, ...) SK_PRINTF(2, 3);

static void queue_err(struct al_call *call, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    vsnprintf(call->err, sizeof(call->err), fmt, va);
    va_end(va);
    call->status = SK_ERR;
    queue_result(call);
}

void al_deliver(struct al_conn *c)
{
    /* One at a time off the head: a callback may detach, which delivers the rest. */
    while (c->done_head != NULL) {
        struct al_call *call = c->done_head;
        c->done_head = call->next;
        if (c->done_head == NULL)
            c->done_tail = NULL;
        if (call->status != SK_OK) {
            c->ap->host->metric_add(c->ap->errors, 1);
            call->cb(call->arg, SK_ERR, NULL, call->err);
        } else {
            struct sk_pay_result res = {
                .status = SK_TRADE_WAITING,
                .order_no = call->order_no,
                .trade_no = "",
                .amount_cents = call->amount_cents,
                .pay_url = call->pay_url,
            };
            call->cb(call->arg, SK_OK, &res, NULL);
        }
        call_free(call);
    }
}

/* ---- building requests --------------------------------------------------- */

static struct al_call *call_new(struct al_conn *c, enum verb verb, const char *method, sk_pay_cb cb, void *arg)
{
    struct al_call *call;

    if (c == NULL || c->closing || cb == NULL)
        return NULL;
    call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->c = c;
    call->verb = verb;
    call->method = method;
    call->cb = cb;
    call->arg = arg;
    call->amount_cents = -1;
    return call;
}

/* The merchant's trade number: 1 to 63 visible ASCII characters (what struct
 * sk_pay_notify can carry back; Alipay allows 64). */
static int order_no_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= AL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    }
    return 1;
}

/*
 * The signed parameters of a request for `method` with `biz` (a JSON object whose
 * reference is kept by the caller): the common parameters, notify_url and
 * return_url when given, biz_content, then `sign` over all of them (sign_type
 * included, as Alipay signs requests). SK_ERR with a sentence in err.
 */
static int build(const struct alipay *ap, const char *method, json_t *biz, const char *notify_url,
                 const char *return_url, struct al_params *p, char *err)
{
    char ts[AL_TIME_MAX];
    char *content = NULL, *sig = NULL, *bizs = NULL;
    int rc = SK_ERR, ok;

    al_params_init(p);
    bizs = json_dumps(biz, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (bizs == NULL || al_china_time(now_ms(), ts) != SK_OK) {
        say(err, "cannot build the request (out of memory)");
        goto out;
    }
    ok = al_params_add(p, "app_id", ap->app_id) == SK_OK && al_params_add(p, "method", method) == SK_OK &&
         al_params_add(p, "format", "JSON") == SK_OK && al_params_add(p, "charset", "utf-8") == SK_OK &&
         al_params_add(p, "sign_type", "RSA2") == SK_OK && al_params_add(p, "timestamp", ts) == SK_OK &&
         al_params_add(p, "version", "1.0") == SK_OK;
    if (ok && notify_url != NULL && notify_url[0] != '\0')
        ok = al_params_add(p, "notify_url", notify_url) == SK_OK;
    if (ok && return_url != NULL && return_url[0] != '\0')
        ok = al_params_add(p, "return_url", return_url) == SK_OK;
    if (ok)
        ok = al_params_add(p, "biz_content", bizs) == SK_OK;
    if (ok) {
        content = al_params_sign_content(p, 1);
        ok = content != NULL;
    }
    if (!ok) {
        say(err, "cannot build the request (out of memory)");
        goto out;
    }
    if (al_sign(ap->app_key, content, strlen(content), &sig, err) != SK_OK)
        goto out;
    if (al_params_add(p, "sign", sig) != SK_OK) {
        say(err, "cannot build the request (out of memory)");
        goto out;
    }
    rc = SK_OK;
out:
    if (rc != SK_OK)
        al_params_free(p);
    free(bizs);
    free(content);
    free(sig);
    return rc;
}

static void on_answer(void *arg, const struct sk_chttp_resp *resp);

/* Sign and post a request for call->method. SK_ERR with err: nothing was sent. */
static int send_request(struct al_call *call, json_t *biz, const char *notify_url, char *err)
{
    struct alipay *ap = call->c->ap;
    struct al_params p;
    char *form = NULL;
    int rc = SK_ERR;

    if (build(ap, call->method, biz, notify_url, NULL, &p, err) != SK_OK)
        return SK_ERR;
    form = al_params_encode(&p);
    if (form == NULL) {
        say(err, "cannot build the request (out of memory)");
        goto out;
    }
    struct sk_chttp_req req = {
        .method = "POST",
        .url = ap->gateway_url,
        .content_type = "application/x-www-form-urlencoded;charset=utf-8",
        .body = form,
        .body_len = strlen(form),
        .timeout_ms = ap->timeout_ms,
        .max_answer = ANSWER_MAX,
    };
    if (sk_chttp_request(call->c->http, &req, on_answer, call, err) != SK_OK)
        goto out;
    ap->host->metric_add(ap->requests, 1);
    rc = SK_OK;
out:
    free(form);
    al_params_free(&p);
    return rc;
}

/* ---- reading answers ----------------------------------------------------- */

static int json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/*
 * Verify `sig` over the exact text of the value of `name` in body: every place
 * where `"name"` is followed by ':' and an object is parsed on its own (jansson
 * stops at the end of the value and says how many bytes it read); a candidate
 * counts only if it equals `obj`, the value the whole-body parse found, so the
 * text that is verified is the one that is acted upon.
 */
static int verify_raw(EVP_PKEY *key, const char *body, size_t len, const char *name, const json_t *obj, const char *sig,
                      char *why)
{
    char needle[128];
    const char *end = body + len, *p = body;
    size_t nlen;

    snprintf(needle, sizeof(needle), "\"%s\"", name);
    nlen = strlen(needle);
    say(why, "the signed text of %s is not in the answer", name);
    while (p < end) {
        const char *v;
        json_error_t jerr;
        json_t *cand;

        p = memmem(p, (size_t)(end - p), needle, nlen);
        if (p == NULL)
            break;
        p += nlen;
        v = p;
        while (v < end && json_ws(*v))
            v++;
        if (v >= end || *v != ':')
            continue;
        v++;
        while (v < end && json_ws(*v))
            v++;
        if (v >= end || *v != '{')
            continue;
        cand = json_loadb(v, (size_t)(end - v), JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (cand == NULL)
            continue;
        int same = json_equal(cand, (json_t *)obj) && jerr.position > 0 && (size_t)jerr.position <= (size_t)(end - v);
        json_decref(cand);
        if (same && al_verify(key, v, (size_t)jerr.position, sig, why) == SK_OK)
            return SK_OK;
    }
    return SK_ERR;
}

static const char *str_field(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Parse and verify the gateway's answer to call->method. SK_ERR with a sentence
 * (without the "alipay <method>: " head) in why. */
static int answer_parse(const struct alipay *ap, const char *method, const char *body, size_t len, struct answer *a,
                        char *why)
{
    char key[96];
    const char *sig;
    json_error_t jerr;
    int rc = SK_ERR;

    memset(a, 0, sizeof(*a));
    a->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (a->root == NULL || !json_is_object(a->root)) {
        say(why, "the answer is not a JSON object%s%s", a->root == NULL ? ": " : "", a->root == NULL ? jerr.text : "");
        goto out;
    }
    snprintf(key, sizeof(key), "%s_response", method);
    for (char *k = key; *k; k++) {
        if (*k == '.')
            *k = '_';
    }
    a->obj = json_object_get(a->root, key);
    if (a->obj == NULL) {
        snprintf(key, sizeof(key), "error_response");
        a->obj = json_object_get(a->root, key);
    }
    if (!json_is_object(a->obj)) {
        say(why, "the answer has no %s_response object", method);
        goto out;
    }
    if (!json_is_string(json_object_get(a->obj, "code"))) {
        say(why, "the answer has no code");
        goto out;
    }
    a->code = str_field(a->obj, "code");
    a->msg = str_field(a->obj, "msg");
    a->sub_code = str_field(a->obj, "sub_code");
    a->sub_msg = str_field(a->obj, "sub_msg");
    sig = str_field(a->root, "sign");
    if (sig[0] != '\0') {
        char detail[SK_ERRLEN];
        if (verify_raw(ap->alipay_key, body, len, key, a->obj, sig, detail) != SK_OK) {
            say(why, "the answer's signature does not verify with alipay_public_key_file %s (%s)", ap->alipay_key_file,
                detail);
            ap->host->log(ap->host, SK_LOG_WARN, "%s: an answer from %s failed its signature check: %s", method,
                          ap->gateway_url, detail);
            goto out;
        }
        a->is_signed = 1;
    } else if (strcmp(a->code, CODE_OK) == 0) {
        say(why, "the answer is not signed");
        goto out;
    }
    rc = SK_OK;
out:
    if (rc != SK_OK) {
        json_decref(a->root);
        memset(a, 0, sizeof(*a));
    }
    return rc;
}

/* "alipay <method>: <code> <msg> <sub_code> <sub_msg>", empty parts left out. */
static void gateway_error(struct al_call *call, const struct answer *a)
{
    finish_err(call, "alipay %s: %s%s%s%s%s%s%s%s%s", call->method, a->code, a->msg[0] ? " " : "", a->msg,
               a->sub_code[0] ? " " : "", a->sub_code, a->sub_msg[0] ? " " : "", a->sub_msg,
               strcmp(a->code, CODE_BUSY) == 0 ? " (retryable: the gateway is busy; try again)" : "",
               a->is_signed ? "" : " (unsigned answer)");
}

/* A signed business error with this sub_code? */
static int signed_sub(const struct answer *a, const char *sub_code)
{
    return a->is_signed && strcmp(a->code, CODE_OK) != 0 && strcmp(a->sub_code, sub_code) == 0;
}

/* The answer must be about our trade (when it names one). */
static int same_trade(struct al_call *call, const struct answer *a)
{
    const char *o = str_field(a->obj, "out_trade_no");
    if (o[0] != '\0' && strcmp(o, call->order_no) != 0) {
        finish_err(call, "alipay %s: the answer is about trade %.64s, not %s", call->method, o, call->order_no);
        return 0;
    }
    return 1;
}

static int start_query(struct al_call *call, char *err);

static void on_create(struct al_call *call, const struct answer *a)
{
    const char *qr = str_field(a->obj, "qr_code");
    if (strcmp(a->code, CODE_OK) != 0) {
        gateway_error(call, a);
    } else if (!same_trade(call, a)) {
        /* done */
    } else if (qr[0] == '\0') {
        finish_err(call, "alipay %s: the answer has no qr_code", call->method);
    } else {
        struct sk_pay_result res = {.status = SK_TRADE_WAITING,
                                    .order_no = call->order_no,
                                    .trade_no = str_field(a->obj, "trade_no"),
                                    .amount_cents = call->amount_cents,
                                    .qr_code = qr};
        finish_ok(call, &res);
    }
}

static void on_query(struct al_call *call, const struct answer *a)
{
    const char *st = str_field(a->obj, "trade_status"), *amount = str_field(a->obj, "total_amount");
    struct sk_pay_result res = {.order_no = call->order_no, .trade_no = "", .amount_cents = -1};

    if (signed_sub(a, "ACQ.TRADE_NOT_EXIST")) {
        res.status = SK_TRADE_NOT_FOUND;
        finish_ok(call, &res);
        return;
    }
    if (strcmp(a->code, CODE_OK) != 0) {
        gateway_error(call, a);
        return;
    }
    if (!same_trade(call, a))
        return;
    if (strcmp(st, "WAIT_BUYER_PAY") == 0) {
        res.status = SK_TRADE_WAITING;
    } else if (strcmp(st, "TRADE_SUCCESS") == 0 || strcmp(st, "TRADE_FINISHED") == 0) {
        res.status = SK_TRADE_PAID;
    } else if (strcmp(st, "TRADE_CLOSED") == 0) {
        res.status = SK_TRADE_CLOSED;
    } else {
        finish_err(call, "alipay %s: unknown trade_status \"%.40s\"", call->method, st);
        return;
    }
    if (amount[0] != '\0' && al_yuan_parse(amount, &res.amount_cents) != SK_OK) {
        finish_err(call, "alipay %s: total_amount \"%.40s\" is not an amount in yuan", call->method, amount);
        return;
    }
    res.trade_no = str_field(a->obj, "trade_no");
    if (call->after_close && res.status == SK_TRADE_WAITING) {
        finish_err(call,
                   "alipay " M_CLOSE ": the gateway refused to close trade %s (ACQ.TRADE_STATUS_ERROR) "
                   "although it waits for payment",
                   call->order_no);
        return;
    }
    finish_ok(call, &res);
}

static void on_close(struct al_call *call, const struct answer *a)
{
    struct sk_pay_result res = {.order_no = call->order_no, .trade_no = "", .amount_cents = -1};
    char err[SK_ERRLEN];

    if (signed_sub(a, "ACQ.TRADE_NOT_EXIST")) {
        res.status = SK_TRADE_NOT_FOUND;
        finish_ok(call, &res);
    } else if (signed_sub(a, "ACQ.TRADE_STATUS_ERROR")) {
        /* Paid (or already closed, or refunded): a query tells which, so that a
         * closed trade is never taken for a paid one. */
        if (start_query(call, err) != SK_OK)
            finish_err(call, "alipay " M_CLOSE ": trade %s cannot be closed (ACQ.TRADE_STATUS_ERROR) and %s",
                       call->order_no, err);
    } else if (strcmp(a->code, CODE_OK) != 0) {
        gateway_error(call, a);
    } else if (same_trade(call, a)) {
        res.status = SK_TRADE_CLOSED;
        res.trade_no = str_field(a->obj, "trade_no");
        finish_ok(call, &res);
    }
}

static void on_refund(struct al_call *call, const struct answer *a)
{
    const char *fc = str_field(a->obj, "fund_change");
    struct sk_pay_result res = {.status = SK_TRADE_PAID, .order_no = call->order_no, .amount_cents = -1};

    if (strcmp(a->code, CODE_OK) != 0) {
        gateway_error(call, a);
    } else if (!same_trade(call, a)) {
        /* done */
    } else if (strcmp(fc, "Y") != 0 && strcmp(fc, "N") != 0) {
        finish_err(call, "alipay %s: fund_change is \"%.8s\", not Y or N", call->method, fc);
    } else {
        res.refunded = fc[0] == 'Y';
        res.trade_no = str_field(a->obj, "trade_no");
        finish_ok(call, &res);
    }
}

static void on_answer(void *arg, const struct sk_chttp_resp *resp)
{
    struct al_call *call = arg;
    struct al_conn *c = call->c;
    struct answer a;
    char why[SK_ERRLEN];

    if (resp->status == 0) {
        if (c->closing)
            finish_err(call, "alipay %s: the connection was closed before the gateway answered", call->method);
        else
            finish_err(call, "alipay %s: no answer from %s: %s", call->method, c->ap->gateway_url, resp->err);
        return;
    }
    if (resp->status != 200) {
        finish_err(call, "alipay %s: the gateway answered HTTP %ld", call->method, resp->status);
        return;
    }
    if (answer_parse(c->ap, call->method, resp->body, resp->len, &a, why) != SK_OK) {
        finish_err(call, "alipay %s: %s", call->method, why);
        return;
    }
    /* Every path below ends the call (or starts its next request). */
    if (call->verb == V_CREATE)
        on_create(call, &a);
    else if (call->verb == V_QUERY || call->after_close)
        on_query(call, &a);
    else if (call->verb == V_CLOSE)
        on_close(call, &a);
    else
        on_refund(call, &a);
    json_decref(a.root);
}

/* ---- the verbs ----------------------------------------------------------- */

/* The subject: prefix + subject, cut to Alipay's 256 characters on a UTF-8
 * character boundary. malloc'd, or NULL when out of memory. */
static char *make_subject(const char *prefix, const char *subject)
{
    size_t len = strlen(prefix) + strlen(subject), chars = 0, cut = len;
    char *s = malloc(len + 1);

    if (s == NULL)
        return NULL;
    snprintf(s, len + 1, "%s%s", prefix, subject);
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars > SUBJECT_MAX_CHARS) {
            cut = i;
            break;
        }
    }
    s[cut] = '\0';
    return s;
}

/* The trade's biz_content for create; NULL with a sentence in err. */
static json_t *create_biz(const struct alipay *ap, const struct sk_pay_trade *t, char *err)
{
    char yuan[AL_YUAN_MAX], expire[AL_TIME_MAX];
    char *subject = NULL;
    json_t *biz = NULL, *js = NULL;

    if (t->amount_cents < 1 || t->amount_cents > AMOUNT_MAX_CENTS) {
        say(err, "amount %lld cents is out of range (1 to %lld)", (long long)t->amount_cents, AMOUNT_MAX_CENTS);
        goto out;
    }
    if (t->expires_at_ms <= now_ms()) {
        say(err, "the trade would expire at %lld ms, which is not in the future", (long long)t->expires_at_ms);
        goto out;
    }
    subject = make_subject(ap->subject_prefix, t->subject != NULL ? t->subject : "");
    if (subject == NULL || al_yuan_format(t->amount_cents, yuan) != SK_OK ||
        al_china_time(t->expires_at_ms, expire) != SK_OK) {
        say(err, "cannot build the request");
        goto out;
    }
    if (subject[0] == '\0') {
        say(err, "the trade has no subject (Alipay requires one)");
        goto out;
    }
    js = json_string(subject);
    if (js == NULL) {
        say(err, "the subject is not valid UTF-8");
        goto out;
    }
    biz = json_object();
    if (biz == NULL || json_object_set_new(biz, "out_trade_no", json_string(t->order_no)) != 0 ||
        json_object_set_new(biz, "total_amount", json_string(yuan)) != 0 || json_object_set(biz, "subject", js) != 0 ||
        (ap->method == AL_PAGE &&
         json_object_set_new(biz, "product_code", json_string("FAST_INSTANT_TRADE_PAY")) != 0) ||
        json_object_set_new(biz, "time_expire", json_string(expire)) != 0) {
        say(err, "cannot build the request (out of memory)");
        json_decref(biz);
        biz = NULL;
    }
out:
    json_decref(js);
    free(subject);
    return biz;
}

/* page.pay: no call to the gateway; the buyer's browser is sent to the gateway
 * URL carrying every signed parameter. */
static void make_page_url(struct al_call *call, json_t *biz)
{
    const struct alipay *ap = call->c->ap;
    struct al_params p;
    char err[SK_ERRLEN];
    char *form = NULL;

    if (build(ap, M_PAGE_PAY, biz, ap->notify_url, ap->return_url, &p, err) != SK_OK) {
        queue_err(call, "alipay " M_PAGE_PAY ": %s", err);
        return;
    }
    form = al_params_encode(&p);
    size_t len = form != NULL ? strlen(ap->gateway_url) + 1 + strlen(form) + 1 : 0;
    call->pay_url = form != NULL ? malloc(len) : NULL;
    if (call->pay_url == NULL) {
        queue_err(call, "alipay " M_PAGE_PAY ": out of memory");
    } else {
        snprintf(call->pay_url, len, "%s%c%s", ap->gateway_url, strchr(ap->gateway_url, '?') ? '&' : '?', form);
        call->status = SK_OK;
        queue_result(call);
    }
    free(form);
    al_params_free(&p);
}

int al_trade_create(void *conn, const struct sk_pay_trade *t, sk_pay_cb cb, void *arg)
{
    struct al_conn *c = conn;
    const char *method = c != NULL && c->ap->method == AL_PAGE ? M_PAGE_PAY : M_PRECREATE;
    struct al_call *call = call_new(c, V_CREATE, method, cb, arg);
    char err[SK_ERRLEN];
    json_t *biz = NULL;

    if (call == NULL || t == NULL) {
        free(call);
        return SK_ERR;
    }
    if (!order_no_ok(t->order_no)) {
        queue_err(call, "alipay %s: the order number must be 1 to %d visible ASCII characters", method, AL_ID_MAX - 1);
        return SK_OK;
    }
    snprintf(call->order_no, sizeof(call->order_no), "%s", t->order_no);
    call->amount_cents = t->amount_cents;
    biz = create_biz(c->ap, t, err);
    if (biz == NULL) {
        queue_err(call, "alipay %s: trade %s: %s", method, call->order_no, err);
        return SK_OK;
    }
    if (c->ap->method == AL_PAGE)
        make_page_url(call, biz);
    else if (send_request(call, biz, c->ap->notify_url, err) != SK_OK)
        queue_err(call, "alipay %s: %s", method, err);
    json_decref(biz);
    return SK_OK;
}

/* Send alipay.trade.query for call->order_no (also close's follow-up). */
static int start_query(struct al_call *call, char *err)
{
    json_t *biz = json_pack("{s:s}", "out_trade_no", call->order_no);
    int rc;

    if (biz == NULL) {
        say(err, "out of memory");
        return SK_ERR;
    }
    call->method = M_QUERY;
    call->after_close = call->verb == V_CLOSE;
    rc = send_request(call, biz, NULL, err);
    json_decref(biz);
    return rc;
}

/* Start query or close of order_no; bad input is reported through the callback. */
static int simple_verb(void *conn, enum verb verb, const char *method, const char *order_no, sk_pay_cb cb, void *arg)
{
    struct al_call *call = call_new(conn, verb, method, cb, arg);
    char err[SK_ERRLEN];
    json_t *biz;

    if (call == NULL)
        return SK_ERR;
    if (!order_no_ok(order_no)) {
        queue_err(call, "alipay %s: the order number must be 1 to %d visible ASCII characters", method, AL_ID_MAX - 1);
        return SK_OK;
    }
    snprintf(call->order_no, sizeof(call->order_no), "%s", order_no);
    if (verb == V_QUERY) {
        if (start_query(call, err) != SK_OK)
            queue_err(call, "alipay %s: %s", method, err);
        return SK_OK;
    }
    biz = json_pack("{s:s}", "out_trade_no", order_no);
    if (biz == NULL || send_request(call, biz, NULL, err) != SK_OK)
        queue_err(call, "alipay %s: %s", method, biz == NULL ? "out of memory" : err);
    json_decref(biz);
    return SK_OK;
}

int al_trade_query(void *conn, const char *order_no, sk_pay_cb cb, void *arg)
{
    return simple_verb(conn, V_QUERY, M_QUERY, order_no, cb, arg);
}

int al_trade_close(void *conn, const char *order_no, sk_pay_cb cb, void *arg)
{
    return simple_verb(conn, V_CLOSE, M_CLOSE, order_no, cb, arg);
}

int al_trade_refund(void *conn, const char *order_no, const char *refund_no, int64_t amount_cents, const char *reason,
                    sk_pay_cb cb, void *arg)
{
    struct al_call *call = call_new(conn, V_REFUND, M_REFUND, cb, arg);
    char err[SK_ERRLEN], yuan[AL_YUAN_MAX];
    json_t *biz = NULL;

    if (call == NULL)
        return SK_ERR;
    if (!order_no_ok(order_no)) {
        queue_err(call, "alipay " M_REFUND ": the order number must be 1 to %d visible ASCII characters",
                  AL_ID_MAX - 1);
        return SK_OK;
    }
    snprintf(call->order_no, sizeof(call->order_no), "%s", order_no);
    if (!order_no_ok(refund_no)) {
        queue_err(call, "alipay " M_REFUND ": trade %s: the refund number must be 1 to %d visible ASCII characters",
                  call->order_no, AL_ID_MAX - 1);
        return SK_OK;
    }
    if (amount_cents < 1 || amount_cents > AMOUNT_MAX_CENTS || al_yuan_format(amount_cents, yuan) != SK_OK) {
        queue_err(call, "alipay " M_REFUND ": trade %s: refund amount %lld cents is out of range (1 to %lld)",
                  call->order_no, (long long)amount_cents, AMOUNT_MAX_CENTS);
        return SK_OK;
    }
    if (reason != NULL && strlen(reason) > REASON_MAX_BYTES) {
        queue_err(call, "alipay " M_REFUND ": trade %s: the refund reason is longer than %d bytes", call->order_no,
                  REASON_MAX_BYTES);
        return SK_OK;
    }
    biz = json_pack("{s:s, s:s, s:s}", "out_trade_no", order_no, "refund_amount", yuan, "out_request_no", refund_no);
    if (biz != NULL && reason != NULL && reason[0] != '\0' &&
        json_object_set_new(biz, "refund_reason", json_string(reason)) != 0) {
        queue_err(call, "alipay " M_REFUND ": trade %s: the refund reason is not valid UTF-8", call->order_no);
        json_decref(biz);
        return SK_OK;
    }
    if (biz == NULL || send_request(call, biz, NULL, err) != SK_OK)
        queue_err(call, "alipay " M_REFUND ": %s", biz == NULL ? "out of memory" : err);
    json_decref(biz);
    return SK_OK;
}
