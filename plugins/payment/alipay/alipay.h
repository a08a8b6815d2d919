/*
 * The alipay payment plugin's own declarations, shared by its files (hidden
 * symbols): the instance (config and keys, shared by every loop), the per-loop
 * connection, and the verbs that alipay.c puts in the ops table.
 */
#ifndef SK_ALIPAY_H
#define SK_ALIPAY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <seckill/plugin.h>

#include "http_loop.h"

#define AL_URL_MAX    512
#define AL_ID_MAX     64 /* app_id, seller_id, out_trade_no: fit struct sk_pay_notify */
#define AL_PREFIX_MAX 128

enum al_method {
    AL_PRECREATE = 0, /* alipay.trade.precreate: a QR code */
    AL_PAGE = 1,      /* alipay.trade.page.pay: a signed URL of the payment page */
};

/* The instance. Written in create() only, then read by every loop and by
 * verify_notify on any thread; the keys are only read (OpenSSL allows that from
 * several threads). */
struct alipay {
    const struct sk_host *host;
    char gateway_url[AL_URL_MAX];
    char app_id[AL_ID_MAX];
    char notify_url[AL_URL_MAX];
    char return_url[AL_URL_MAX]; /* page.pay only; "" for none */
    char seller_id[AL_ID_MAX];   /* "" when not checked */
    char subject_prefix[AL_PREFIX_MAX];
    char app_key_file[AL_URL_MAX], alipay_key_file[AL_URL_MAX];
    enum al_method method;
    unsigned timeout_ms;
    EVP_PKEY *app_key;    /* signs requests */
    EVP_PKEY *alipay_key; /* verifies answers and notifies */
    struct sk_metric *requests, *errors, *notifies, *notifies_refused;
};

struct al_call;

/* One connection per loop: an HTTP client and a queue of results known before any
 * I/O (page.pay URLs, refused input), delivered from a uv_idle so that callbacks
 * never run inside the verb. Freed when both handles are closed. */
struct al_conn {
    struct alipay *ap;
    uv_loop_t *loop;
    struct sk_chttp *http;
    uv_idle_t idle;
    struct al_call *done_head, *done_tail;
    int closing;
    int handles; /* http + idle, until closed */
};

/* The verbs (trade.c). */
int al_trade_create(void *conn, const struct sk_pay_trade *trade, sk_pay_cb cb, void *arg);
int al_trade_query(void *conn, const char *order_no, sk_pay_cb cb, void *arg);
int al_trade_close(void *conn, const char *order_no, sk_pay_cb cb, void *arg);
int al_trade_refund(void *conn, const char *order_no, const char *refund_no, int64_t amount_cents, const char *reason,
                    sk_pay_cb cb, void *arg);

/* Run the callbacks of the queued results (trade.c); called from the idle handle
 * and by detach. Safe if a callback detaches. */
void al_deliver(struct al_conn *c);

/* notify.c */
int al_verify_notify(void *instance, const char *content_type, const char *body, size_t len, struct sk_pay_notify *out,
                     char *errbuf);

#endif
