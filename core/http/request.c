/* Request accessors, JSON bodies and responses. Everything here runs on the request's
 * loop thread; nothing takes a lock. */
#include "core/http/request.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"

static void *xmalloc(size_t size)
{
    void *p = malloc(size);

    if (p == NULL) {
        sk_err("http", "out of memory (%zu bytes)", size);
        abort();
    }
    return p;
}

/* h2o clears the request's pool: if we have not answered yet, the request is gone
 * for good (the client went away); remember it so the answer only frees our struct. */
static void on_token_dispose(void *p)
{
    struct sk_http_req_token *token = p;
    struct sk_http_req *req = token->req;

    if (req != NULL) {
        req->h2o = NULL;
        req->token = NULL;
        req->set->n_pending--;
        /* 499: nginx's "client closed request", so the request still shows in the metrics */
        sk_metrics_http(req->set->listener, req->route != NULL ? req->route->pattern : "unmatched", 499,
                        (int64_t)((uv_hrtime() - req->start_ns) / 1000));
    }
}

struct sk_http_req *sk_http_req_new(struct sk_http_reqset *set, h2o_req_t *h2o, const struct sk_http_match *m)
{
    struct sk_http_req *req = xmalloc(sizeof(*req));
    struct sockaddr_storage ss;
    socklen_t sslen;
    size_t i, need = 1, qlen = 0, at;
    const char *qbase = NULL;
    char *w;

    memset(req, 0, sizeof(*req));
    req->set = set;
    req->h2o = h2o;
    req->start_ns = uv_hrtime();
    if (m != NULL && m->result == SK_HTTP_MATCH_OK) {
        req->route = &set->routes[m->route];
        req->n_ids = m->n_ids;
        memcpy(req->ids, m->ids, sizeof(req->ids));
        req->n_strs = m->n_strs;
        for (i = 0; i < m->n_strs; i++)
            need += m->str_len[i] + 1;
    } else if (m != NULL && m->result == SK_HTTP_MATCH_BAD_METHOD) {
        memcpy(req->allow, m->allow, sizeof(req->allow));
    }
    if (h2o->query_at != SIZE_MAX) {
        qbase = h2o->path.base + h2o->query_at + 1;
        qlen = h2o->path.len - h2o->query_at - 1;
    }
    need += qlen;

    /* copies of the path parameters and the query, so they outlive h2o's buffers */
    req->copies = xmalloc(need);
    w = req->copies;
    for (i = 0; i < req->n_strs; i++) {
        memcpy(w, h2o->path.base + m->str_off[i], m->str_len[i]);
        w[m->str_len[i]] = '\0';
        req->strs[i] = w;
        w += m->str_len[i] + 1;
    }
    if (qlen > 0)
        memcpy(w, qbase, qlen);
    w[qlen] = '\0';
    req->query = w;

    sslen = h2o->conn->callbacks->get_peername(h2o->conn, (struct sockaddr *)&ss);
    at = sslen != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sslen, req->peer) : SIZE_MAX;
    if (at == SIZE_MAX || at >= sizeof(req->peer))
        snprintf(req->peer, sizeof(req->peer), "unknown");

    req->token = h2o_mem_alloc_shared(&h2o->pool, sizeof(*req->token), on_token_dispose);
    req->token->req = req;

    req->next = set->live;
    if (set->live != NULL)
        set->live->prev = req;
    set->live = req;
    set->n_live++;
    set->n_pending++;
    return req;
}

static void free_req(struct sk_http_req *req)
{
    struct sk_http_reqset *set = req->set;
    struct sk_http_hdr_copy *h, *next;

    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        set->live = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    set->n_live--;
    if (set->dispatching == req)
        set->dispatching = NULL;
    for (h = req->hdrs; h != NULL; h = next) {
        next = h->next;
        free(h);
    }
    free(req->copies);
    free(req);
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"}, {201, "Created"}, {202, "Accepted"}, {204, "No Content"}, {400, "Bad Request"},
    {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"}, {405, "Method Not Allowed"},
    {409, "Conflict"}, {413, "Payload Too Large"}, {415, "Unsupported Media Type"}, {422, "Unprocessable Entity"},
    {429, "Too Many Requests"}, {500, "Internal Server Error"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

static const char *reason_phrase(int status)
{
    const char *reason = status < 300   ? "OK"
                         : status < 400 ? "Redirection"
                         : status < 500 ? "Client Error"
                                        : "Server Error";
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            reason = reasons[i].reason;
    return reason;
}

/* Answer the h2o side: `body` lives in the request's pool already. Detaches the token
 * first, so h2o clearing the pool later never reaches our struct. */
static void send_h2o(struct sk_http_req *req, int status, const char *content_type, h2o_iovec_t body,
                     unsigned retry_after)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *h = req->h2o;
    struct sk_http_reqset *set = req->set;
    char num[24];
    int n;

    if (status < 100 || status > 599) {
        sk_err(set->who, "handler of %s answered with status %d; sending 500 instead",
               req->route != NULL ? req->route->pattern : "unmatched", status);
        status = 500;
    }
    req->token->req = NULL;
    req->token = NULL;
    req->h2o = NULL;
    set->n_pending--;
    sk_metrics_http(set->listener, req->route != NULL ? req->route->pattern : "unmatched", status,
                    (int64_t)((uv_hrtime() - req->start_ns) / 1000));

    h->res.status = status;
    h->res.reason = reason_phrase(status);
    if (status == 204 || status == 304)
        body.len = 0;
    /* h2o keeps pointers to header values: they go into the pool, like the body */
    if (body.len > 0 || status >= 400)
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       h2o_strdup(&h->pool, content_type, SIZE_MAX).base, strlen(content_type));
    if (retry_after > 0) {
        n = snprintf(num, sizeof(num), "%u", retry_after);
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&h->pool, num, n).base,
                       (size_t)n);
    }
    if (status == 405 && req->allow[0] != '\0')
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_ALLOW, NULL,
                       h2o_strdup(&h->pool, req->allow, SIZE_MAX).base, strlen(req->allow));
    if (set->draining)
        h->http1_is_persistent = 0;
    h->res.content_length = body.len;
    h2o_start_response(h, &generator);
    /* HEAD: the length of the body that GET would get, and no body */
    if (h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD")))
        h2o_send(h, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(h, &body, 1, H2O_SEND_STATE_FINAL);
}

/* --- accessors ---------------------------------------------------------------- */

void *sk_http_app(const struct sk_http_req *req)
{
    return req->set->app;
}

void *sk_http_loop_data(const struct sk_http_req *req)
{
    return req->set->loop_data;
}

uv_loop_t *sk_http_loop(const struct sk_http_req *req)
{
    return req->set->loop;
}

uint64_t sk_http_param_id(const struct sk_http_req *req, unsigned n)
{
    return n < req->n_ids ? req->ids[n] : 0;
}

const char *sk_http_param_str(const struct sk_http_req *req, unsigned n)
{
    return n < req->n_strs ? req->strs[n] : "";
}

const char *sk_http_body(const struct sk_http_req *req, size_t *len)
{
    const char *body = "";
    size_t n = 0;

    if (req->h2o != NULL && req->h2o->entity.base != NULL) {
        body = req->h2o->entity.base;
        n = req->h2o->entity.len;
    }
    if (len != NULL)
        *len = n;
    return body;
}

const char *sk_http_header(const struct sk_http_req *req, const char *name)
{
    char lower[128];
    const char *value = NULL;
    size_t len, i;
    ssize_t at;
    h2o_iovec_t v;
    struct sk_http_hdr_copy *copy;

    if (req->h2o == NULL || name == NULL)
        goto out;
    len = strlen(name);
    if (len == 0 || len >= sizeof(lower))
        goto out;
    /* h2o stores request header names in lower case */
    for (i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[len] = '\0';
    at = h2o_find_header_by_str(&req->h2o->headers, lower, len, -1);
    if (at == -1)
        goto out;
    v = req->h2o->headers.entries[at].value;
    copy = xmalloc(sizeof(*copy) + v.len + 1);
    memcpy(copy->value, v.base, v.len);
    copy->value[v.len] = '\0';
    /* the list is owned by the request; a const accessor that caches is still const
     * to the caller */
    copy->next = req->hdrs;
    ((struct sk_http_req *)req)->hdrs = copy;
    value = copy->value;
out:
    return value;
}

const char *sk_http_query(const struct sk_http_req *req)
{
    return req->query;
}

const char *sk_http_peer(const struct sk_http_req *req)
{
    return req->peer;
}

void sk_http_set_user(struct sk_http_req *req, uint64_t user_id)
{
    req->user = user_id;
}

uint64_t sk_http_user(const struct sk_http_req *req)
{
    return req->user;
}

static int only_space(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'); i++)
        ;
    return i == len;
}

static const char *json_type_name(const json_t *v)
{
    const char *name = "something else";

    switch (json_typeof(v)) {
    case JSON_OBJECT: name = "an object"; break;
    case JSON_ARRAY: name = "an array"; break;
    case JSON_STRING: name = "a string"; break;
    case JSON_INTEGER: name = "an integer"; break;
    case JSON_REAL: name = "a number"; break;
    case JSON_TRUE:
    case JSON_FALSE: name = "a boolean"; break;
    case JSON_NULL: name = "null"; break;
    }
    return name;
}

json_t *sk_http_json_body(struct sk_http_req *req, int allow_empty, int *empty)
{
    json_t *doc = NULL;
    json_error_t jerr;
    const char *body;
    size_t len;

    if (empty != NULL)
        *empty = 0;
    body = sk_http_body(req, &len);
    if (len > req->set->max_body_bytes) {
        sk_http_error(req, 413, "payload_too_large", "the request body has %zu bytes; at most %zu are accepted", len,
                      req->set->max_body_bytes);
        goto out;
    }
    if (only_space(body, len)) {
        if (allow_empty) {
            if (empty != NULL)
                *empty = 1;
            goto out;
        }
        sk_http_error(req, 400, "bad_request", "the request body is empty; a JSON object is expected");
        goto out;
    }
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        sk_http_error(req, 400, "bad_request", "the request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(doc)) {
        sk_http_error(req, 400, "bad_request", "the request body must be a JSON object, not %s", json_type_name(doc));
        json_decref(doc);
        doc = NULL;
    }
out:
    return doc;
}

/* --- responses ------------------------------------------------------------------- */

void sk_http_respond(struct sk_http_req *req, int status, const char *content_type, const char *body, size_t len)
{
    if (req->h2o != NULL)
        send_h2o(req, status, content_type != NULL ? content_type : "application/octet-stream",
                 h2o_strdup(&req->h2o->pool, len > 0 ? body : "", len), 0);
    free_req(req);
}

/* Serialise straight into the request's pool: one copy fewer on the hot path. */
static int dump_into_pool(h2o_req_t *h, const json_t *doc, h2o_iovec_t *out)
{
    size_t need, got;
    char *buf;
    int rc = SK_ERR;

    need = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (need == 0)
        goto out;
    buf = h2o_mem_alloc_pool(&h->pool, need);
    got = json_dumpb(doc, buf, need, JSON_COMPACT | JSON_ENCODE_ANY);
    if (got != need)
        goto out;
    *out = h2o_iovec_init(buf, need);
    rc = SK_OK;
out:
    return rc;
}

static void respond_json_retry(struct sk_http_req *req, int status, json_t *doc, unsigned retry_after)
{
    static const char internal[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"the response could not be built\"}}";
    h2o_iovec_t body;

    if (req->h2o != NULL) {
        if (doc != NULL && dump_into_pool(req->h2o, doc, &body) == SK_OK) {
            send_h2o(req, status, "application/json", body, retry_after);
        } else {
            sk_err(req->set->who, "%s: the JSON response could not be serialised",
                   req->route != NULL ? req->route->pattern : "unmatched");
            send_h2o(req, 500, "application/json", h2o_iovec_init(internal, sizeof(internal) - 1), 0);
        }
    }
    json_decref(doc);
    free_req(req);
}

void sk_http_respond_json(struct sk_http_req *req, int status, json_t *doc)
{
    respond_json_retry(req, status, doc, 0);
}

/* {"error":{"code":…,"message":…}}; bytes that are not UTF-8 (echoed request text)
 * become '?' rather than losing the whole message. */
static json_t *error_doc(const char *code, const char *message)
{
    json_t *doc, *msg;
    char *clean = NULL;
    size_t i, len;

    msg = json_string(message);
    if (msg == NULL) {
        len = strlen(message);
        clean = xmalloc(len + 1);
        for (i = 0; i < len; i++)
            clean[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
        clean[len] = '\0';
        msg = json_string(clean);
        free(clean);
    }
    doc = json_pack("{s:{s:s,s:o*}}", "error", "code", code, "message", msg);
    return doc;
}

static void error_v(struct sk_http_req *req, int status, const char *code, unsigned retry_after, const char *fmt,
                    va_list ap)
{
    char buf[512];
    char *big = NULL;
    const char *msg = buf;
    va_list ap2;
    int n;

    if (req->h2o == NULL) {
        free_req(req); /* the client is gone: nothing to format */
        goto out;
    }
    va_copy(ap2, ap);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n < 0) {
        snprintf(buf, sizeof(buf), "%s", code);
    } else if ((size_t)n >= sizeof(buf)) {
        big = xmalloc((size_t)n + 1);
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
        msg = big;
    }
    va_end(ap2);
    respond_json_retry(req, status, error_doc(code, msg), retry_after);
    free(big);
out:
    return;
}

void sk_http_error(struct sk_http_req *req, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_v(req, status, code, 0, fmt, ap);
    va_end(ap);
}

void sk_http_error_retry(struct sk_http_req *req, unsigned retry_after, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_v(req, 429, "rate_limited", retry_after > 0 ? retry_after : 1, fmt, ap);
    va_end(ap);
}

void sk_http_req_abort(struct sk_http_req *req, int status, const char *code, const char *message)
{
    json_t *doc;
    h2o_iovec_t body = h2o_iovec_init("", 0);

    if (req->h2o != NULL) {
        doc = error_doc(code, message);
        if (doc == NULL || dump_into_pool(req->h2o, doc, &body) != SK_OK)
            body = h2o_iovec_init("", 0);
        send_h2o(req, status, "application/json", body, 0);
        json_decref(doc);
    }
}

size_t sk_http_reqset_free_all(struct sk_http_reqset *set)
{
    size_t n = 0;

    while (set->live != NULL) {
        struct sk_http_req *req = set->live;
        /* the h2o side is long gone with its loop */
        if (req->token != NULL)
            req->token->req = NULL;
        if (req->h2o != NULL)
            set->n_pending--;
        free_req(req);
        n++;
    }
    return n;
}
