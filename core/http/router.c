/* Route patterns compiled into segment lists; a linear scan is plenty for the few
 * dozen routes a listener has and keeps the table order meaningful. */
#include "core/http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum seg_kind { SEG_LITERAL, SEG_ID, SEG_STR };

struct seg {
    enum seg_kind kind;
    const char *text; /* SEG_LITERAL: points into the route's pattern */
    size_t len;
};

struct compiled_route {
    const struct sk_http_route *route;
    size_t method_len;
    struct seg *segs;
    size_t n_segs;
};

struct sk_http_router {
    struct compiled_route *routes;
    size_t n;
};

static void free_routes(struct compiled_route *routes, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(routes[i].segs);
    free(routes);
}

static int check_method(const char *method)
{
    int rc = method != NULL && method[0] != '\0' ? SK_OK : SK_ERR;
    size_t i;

    for (i = 0; rc == SK_OK && method[i] != '\0'; i++)
        if (method[i] < 'A' || method[i] > 'Z')
            rc = SK_ERR;
    return rc;
}

/* Split the pattern after its leading '/' at every '/'. */
static int compile_one(const struct sk_http_route *r, size_t index, struct compiled_route *out, char *err)
{
    const char *p, *end, *seg;
    size_t n_segs = 1, n = 0, len;
    unsigned n_ids = 0, n_strs = 0;
    struct seg *segs = NULL;
    int rc = SK_ERR;

    if (check_method(r->method) != SK_OK) {
        snprintf(err, SK_ERRLEN, "route %zu: the method must be an upper-case word such as GET", index);
        goto out;
    }
    if (r->pattern == NULL || r->pattern[0] != '/') {
        snprintf(err, SK_ERRLEN, "route %zu (%s): the pattern must start with '/'", index, r->method);
        goto out;
    }
    if (r->handler == NULL) {
        snprintf(err, SK_ERRLEN, "route %zu (%s %s) has no handler", index, r->method, r->pattern);
        goto out;
    }
    for (p = r->pattern + 1; *p != '\0'; p++)
        if (*p == '/')
            n_segs++;
    segs = calloc(n_segs, sizeof(*segs));
    if (segs == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory compiling route %zu", index);
        goto out;
    }
    seg = r->pattern + 1;
    for (;;) {
        end = strchr(seg, '/');
        len = end != NULL ? (size_t)(end - seg) : strlen(seg);
        if (len == 4 && memcmp(seg, "{id}", 4) == 0) {
            segs[n].kind = SEG_ID;
            n_ids++;
        } else if (len == 3 && memcmp(seg, "{s}", 3) == 0) {
            segs[n].kind = SEG_STR;
            n_strs++;
        } else if (memchr(seg, '{', len) != NULL || memchr(seg, '}', len) != NULL ||
                   memchr(seg, '?', len) != NULL) {
            snprintf(err, SK_ERRLEN, "route %zu (%s %s): segment '%.*s' is not a literal, {id} or {s}", index,
                     r->method, r->pattern, (int)len, seg);
            goto out;
        } else {
            segs[n].kind = SEG_LITERAL;
        }
        segs[n].text = seg;
        segs[n].len = len;
        n++;
        if (end == NULL)
            break;
        seg = end + 1;
    }
    if (n_ids > SK_HTTP_MAX_PARAMS || n_strs > SK_HTTP_MAX_PARAMS) {
        snprintf(err, SK_ERRLEN, "route %zu (%s %s): more than %d {id} or {s} placeholders", index, r->method,
                 r->pattern, SK_HTTP_MAX_PARAMS);
        goto out;
    }
    out->route = r;
    out->method_len = strlen(r->method);
    out->segs = segs;
    out->n_segs = n;
    segs = NULL;
    rc = SK_OK;
out:
    free(segs);
    return rc;
}

int sk_http_router_new(const struct sk_http_route *routes, size_t n, struct sk_http_router **out, char *err)
{
    struct sk_http_router *router = NULL;
    struct compiled_route *compiled = NULL;
    size_t i, j, done = 0;
    int rc = SK_ERR;

    if (n > 0 && routes == NULL) {
        snprintf(err, SK_ERRLEN, "the route table is NULL but %zu routes were announced", n);
        goto out;
    }
    router = calloc(1, sizeof(*router));
    compiled = calloc(n > 0 ? n : 1, sizeof(*compiled));
    if (router == NULL || compiled == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory compiling the route table");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (compile_one(&routes[i], i, &compiled[i], err) != SK_OK)
            goto out;
        done++;
        for (j = 0; j < i; j++) {
            if (strcmp(routes[j].method, routes[i].method) == 0 && strcmp(routes[j].pattern, routes[i].pattern) == 0) {
                snprintf(err, SK_ERRLEN, "routes %zu and %zu are both %s %s", j, i, routes[i].method,
                         routes[i].pattern);
                goto out;
            }
        }
    }
    router->routes = compiled;
    router->n = n;
    compiled = NULL;
    *out = router;
    router = NULL;
    rc = SK_OK;
out:
    if (compiled != NULL)
        free_routes(compiled, done);
    free(router);
    return rc;
}

void sk_http_router_free(struct sk_http_router *router)
{
    if (router == NULL)
        return;
    free_routes(router->routes, router->n);
    free(router);
}

/* Canonical decimal 1..INT64_MAX: digits only, no leading zero. */
static int parse_id(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    int rc = SK_ERR;

    if (len == 0 || len > 19 || s[0] < '1' || s[0] > '9')
        goto out;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto out;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot overflow uint64_t */
    }
    if (v > (uint64_t)INT64_MAX)
        goto out;
    *out = v;
    rc = SK_OK;
out:
    return rc;
}

/* Does `path` fit the route's segments? Fills the placeholders of m on success. */
static int match_path(const struct compiled_route *cr, const char *path, size_t path_len, struct sk_http_match *m)
{
    size_t pos = 1, i, len;
    const char *seg, *slash;
    int ok = 0;

    if (path_len == 0 || path[0] != '/')
        goto out;
    m->n_ids = 0;
    m->n_strs = 0;
    for (i = 0; i < cr->n_segs; i++) {
        if (pos > path_len)
            goto out; /* the path has fewer segments */
        seg = path + pos;
        slash = memchr(seg, '/', path_len - pos);
        len = slash != NULL ? (size_t)(slash - seg) : path_len - pos;
        switch (cr->segs[i].kind) {
        case SEG_LITERAL:
            if (len != cr->segs[i].len || memcmp(seg, cr->segs[i].text, len) != 0)
                goto out;
            break;
        case SEG_ID:
            if (parse_id(seg, len, &m->ids[m->n_ids]) != SK_OK)
                goto out;
            m->n_ids++;
            break;
        case SEG_STR:
            if (len == 0)
                goto out;
            m->str_off[m->n_strs] = pos;
            m->str_len[m->n_strs] = len;
            m->n_strs++;
            break;
        }
        /* step over the segment and its '/'; past the end means "no more segments" */
        pos += len + 1;
    }
    ok = pos == path_len + 1;
out:
    return ok;
}

static void add_allow(struct sk_http_match *m, const char *method)
{
    size_t used = strlen(m->allow), mlen = strlen(method);
    const char *p = m->allow;

    /* the same method can be allowed by two patterns: list it once */
    for (p = strstr(p, method); p != NULL; p = strstr(p + mlen, method))
        if ((p == m->allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            goto out;
    if (used + mlen + 3 > sizeof(m->allow))
        goto out;
    if (used > 0) {
        memcpy(m->allow + used, ", ", 2);
        used += 2;
    }
    memcpy(m->allow + used, method, mlen + 1);
out:
    return;
}

void sk_http_router_match(const struct sk_http_router *router, const char *method, size_t method_len,
                          const char *path, size_t path_len, struct sk_http_match *m)
{
    size_t i;
    struct sk_http_match scratch;
    /* HEAD also matches GET routes; the server drops the body */
    int is_head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;

    m->result = SK_HTTP_MATCH_NOT_FOUND;
    m->route = 0;
    m->n_ids = 0;
    m->n_strs = 0;
    m->allow[0] = '\0';
    for (i = 0; i < router->n && m->result != SK_HTTP_MATCH_OK; i++) {
        const struct compiled_route *cr = &router->routes[i];
        int same_method = (cr->method_len == method_len && memcmp(cr->route->method, method, method_len) == 0) ||
                          (is_head && strcmp(cr->route->method, "GET") == 0);

        if (!match_path(cr, path, path_len, &scratch))
            continue;
        if (same_method) {
            memcpy(m->ids, scratch.ids, sizeof(m->ids));
            memcpy(m->str_off, scratch.str_off, sizeof(m->str_off));
            memcpy(m->str_len, scratch.str_len, sizeof(m->str_len));
            m->n_ids = scratch.n_ids;
            m->n_strs = scratch.n_strs;
            m->route = i;
            m->result = SK_HTTP_MATCH_OK;
            m->allow[0] = '\0';
        } else {
            m->result = SK_HTTP_MATCH_BAD_METHOD;
            add_allow(m, cr->route->method);
        }
    }
}
