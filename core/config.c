/*
 * The daemon's configuration: one YAML file, read with libyaml's event API into a
 * small tree that keeps the line of every node, then checked against a table of
 * known keys (see `top_fields` below and docs/config.md).
 *
 * Scalars are typed by the YAML 1.2 core schema (the one JSON users expect): plain
 * `true`/`false` are booleans, plain `~`/`null`/empty are null, plain decimal numbers
 * are integers or reals, everything else, and every quoted scalar, is a string.
 * Anchors may be written but aliases are refused: a config is read by people, and
 * aliases would let a small file expand into a huge plugin section.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <yaml.h>

#include "log.h"

#ifndef SK_PLUGIN_DIR
#define SK_PLUGIN_DIR "/usr/local/lib/seckill/plugins"
#endif

_Static_assert(sizeof(SK_PLUGIN_DIR) <= sizeof(((struct sk_config *)0)->plugin_dir),
               "SK_PLUGIN_DIR does not fit struct sk_config.plugin_dir");

/* A config is a page of text; the limit keeps a wrong path (a log file, a device)
 * from being read into memory whole. */
#define CONFIG_MAX_BYTES (1024 * 1024)
/* Deeper nesting than this is a mistake, and it bounds the recursion below. */
#define CONFIG_MAX_DEPTH 64
#define SECRET_MIN_BYTES 16
#define ORDER_TIMEOUT_MAX_MS (30LL * 24 * 3600 * 1000) /* 30 days */
#define PATH_LEN 256

#define ENV_JWT_SECRET "SECKILL_JWT_SECRET"
#define ENV_ADMIN_TOKEN "SECKILL_ADMIN_TOKEN"

/* ---------------------------------------------------------------------------------- */
/* The YAML tree                                                                        */
/* ---------------------------------------------------------------------------------- */

enum ynode_kind { YN_SCALAR, YN_MAP, YN_SEQ };

struct ynode {
    enum ynode_kind kind;
    size_t line;           /* 1-based line where the node starts */
    char *text;            /* scalar: its value, NUL-terminated; may hold NULs (see len) */
    size_t len;
    int quoted;            /* scalar: quoted, block or tagged !!str, so always a string */
    struct ynode **kids;   /* map: key, value, key, value, …; seq: the items */
    size_t nkids, cap;
};

/* What a scalar is under the core schema. */
enum yscalar { YS_NULL, YS_BOOL, YS_INT, YS_FLOAT, YS_STR };

struct ctx {
    const char *name;         /* the file, as named in messages */
    char *err;                /* SK_CONFIG_ERRLEN bytes, caller's */
    const char *text;         /* the whole input, for reader-error line numbers */
    size_t len;
    struct sk_config cfg;     /* filled in here; handed to the caller on success */
    struct ynode *root;
};

static void node_free(struct ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

/* Write "name:line: path: message" (or without the path when it is NULL) into the
 * caller's buffer; always returns SK_ERR so that callers can `return fail(…)`. */
static int fail(struct ctx *c, size_t line, const char *path, const char *fmt, ...) SK_PRINTF(4, 5);
static int fail(struct ctx *c, size_t line, const char *path, const char *fmt, ...)
{
    char msg[SK_CONFIG_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    if (path != NULL)
        n = snprintf(c->err, SK_CONFIG_ERRLEN, "%s:%zu: %s: %s", c->name, line, path, msg);
    else
        n = snprintf(c->err, SK_CONFIG_ERRLEN, "%s:%zu: %s", c->name, line, msg);
    (void)n; /* a message cut at SK_CONFIG_ERRLEN is still the best we can say */
    return SK_ERR;
}

/* Quote a value for a message: printable ASCII as is, the rest as \xNN, long values
 * cut with "...". Returns out. */
static const char *show_text(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    const size_t max_shown = 60;
    out[o++] = '"';
    for (size_t i = 0; i < len && i < max_shown && o + 8 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            out[o++] = (char)ch;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (len > max_shown && o + 5 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

static enum yscalar classify(const struct ynode *n);

/* Describe a node for "expected X, got Y" messages. */
static const char *show_node(const struct ynode *n, char *out, size_t outlen)
{
    if (n->kind == YN_MAP) {
        snprintf(out, outlen, "a mapping");
    } else if (n->kind == YN_SEQ) {
        snprintf(out, outlen, "a sequence");
    } else if (!n->quoted && n->len == 0) {
        snprintf(out, outlen, "nothing");
    } else {
        show_text(n->text, n->len, out, outlen);
    }
    return out;
}

/* "parent.key", or "key" at the top; cut (only ever shown in messages) when long. */
static void path_join(char *out, const char *parent, const char *key, size_t keylen)
{
    char shown[128];
    size_t k = keylen < sizeof(shown) - 1 ? keylen : sizeof(shown) - 1;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)key[i];
        shown[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    shown[k] = '\0';
    int n;
    if (parent[0] != '\0')
        n = snprintf(out, PATH_LEN, "%s.%s", parent, shown);
    else
        n = snprintf(out, PATH_LEN, "%s", shown);
    (void)n; /* cut paths are fine in messages */
}

static int yaml_syntax_error(struct ctx *c, const yaml_parser_t *p)
{
    size_t line = p->problem_mark.line + 1;
    if (p->error == YAML_MEMORY_ERROR)
        return fail(c, 1, NULL, "out of memory while parsing");
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < c->len; i++)
            line += c->text[i] == '\n';
        return fail(c, line, NULL, "YAML syntax error: %s", p->problem ? p->problem : "unreadable input");
    }
    if (p->context != NULL)
        return fail(c, line, NULL, "YAML syntax error: %s (%s at line %zu)", p->problem ? p->problem : "?",
                    p->context, p->context_mark.line + 1);
    return fail(c, line, NULL, "YAML syntax error: %s", p->problem ? p->problem : "?");
}

static int append_kid(struct ctx *c, struct ynode *parent, struct ynode *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct ynode **kids = realloc(parent->kids, cap * sizeof(*kids));
        if (kids == NULL)
            return fail(c, kid->line, NULL, "out of memory");
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return SK_OK;
}

/* Make the node for a scalar, mapping-start or sequence-start event. */
static int node_from_event(struct ctx *c, const yaml_event_t *ev, struct ynode **out)
{
    const char *tag = NULL;
    size_t line = ev->start_mark.line + 1;
    int rc = SK_ERR;
    struct ynode *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return fail(c, line, NULL, "out of memory");
    n->line = line;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = YN_SCALAR;
        tag = (const char *)ev->data.scalar.tag;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        /* "!" and "!!str" are the only tags that make sense here: both say "string". */
        if (tag != NULL && (strcmp(tag, "!") == 0 || strcmp(tag, YAML_STR_TAG) == 0)) {
            n->quoted = 1;
            tag = NULL;
        }
        n->len = ev->data.scalar.length;
        n->text = malloc(n->len + 1);
        if (n->text == NULL) {
            fail(c, line, NULL, "out of memory");
            goto out;
        }
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        n->kind = YN_MAP;
        tag = (const char *)ev->data.mapping_start.tag;
        if (tag != NULL && strcmp(tag, YAML_MAP_TAG) == 0)
            tag = NULL;
    } else {
        n->kind = YN_SEQ;
        tag = (const char *)ev->data.sequence_start.tag;
        if (tag != NULL && strcmp(tag, YAML_SEQ_TAG) == 0)
            tag = NULL;
    }
    if (tag != NULL) {
        char shown[80];
        fail(c, line, NULL, "the YAML tag %s is not supported", show_text(tag, strlen(tag), shown, sizeof(shown)));
        goto out;
    }
    *out = n;
    n = NULL;
    rc = SK_OK;
out:
    node_free(n);
    return rc;
}

/* Parse the whole input into c->root (one document whose top is a mapping). */
static int build_tree(struct ctx *c)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct ynode *stack[CONFIG_MAX_DEPTH];
    size_t depth = 0;
    struct ynode *root = NULL;
    int have_event = 0, done = 0, docs = 0, rc = SK_ERR;

    if (!yaml_parser_initialize(&parser))
        return fail(c, 1, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)c->text, c->len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_syntax_error(c, &parser);
            goto out;
        }
        have_event = 1;
        size_t line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0) {
                fail(c, line, NULL, "only one YAML document is allowed in a config file");
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT: {
            char shown[80];
            const char *a = (const char *)ev.data.alias.anchor;
            fail(c, line, NULL, "YAML aliases (*%s) are not supported; write the value out",
                 show_text(a, strlen(a), shown, sizeof(shown)));
            goto out;
        }
        case YAML_SCALAR_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
            struct ynode *n = NULL;
            if (node_from_event(c, &ev, &n) != SK_OK)
                goto out;
            if (depth == 0) {
                root = n; /* one document, so one top node */
            } else if (append_kid(c, stack[depth - 1], n) != SK_OK) {
                node_free(n);
                goto out;
            }
            if (n->kind != YN_SCALAR) {
                if (depth == CONFIG_MAX_DEPTH) {
                    fail(c, line, NULL, "nested deeper than %d levels", CONFIG_MAX_DEPTH);
                    goto out;
                }
                stack[depth++] = n;
            }
            break;
        }
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        have_event = 0;
    }
    if (root == NULL || (root->kind == YN_SCALAR && classify(root) == YS_NULL)) {
        fail(c, 1, NULL, "the configuration is empty");
        goto out;
    }
    if (root->kind != YN_MAP) {
        char shown[80];
        fail(c, root->line, NULL, "expected a mapping of keys at the top, got %s",
             show_node(root, shown, sizeof(shown)));
        goto out;
    }
    c->root = root;
    root = NULL;
    rc = SK_OK;
out:
    if (have_event)
        yaml_event_delete(&ev);
    yaml_parser_delete(&parser);
    node_free(root);
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Scalars                                                                              */
/* ---------------------------------------------------------------------------------- */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Decimal integer: [-+]?[0-9]+ */
static int looks_int(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!is_digit(*s))
        return 0;
    while (is_digit(*s))
        s++;
    return *s == '\0';
}

/* Core-schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? and .inf/.nan */
static int is_inf_or_nan(const char *s)
{
    static const char *const special[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                          "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcmp(s, special[i]) == 0)
            return 1;
    return 0;
}

static int looks_float(const char *s)
{
    if (is_inf_or_nan(s))
        return 1;
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
    } else {
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
        if (*s == '.') {
            s++;
            while (is_digit(*s))
                s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
    }
    return *s == '\0';
}

static enum yscalar classify(const struct ynode *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    if (n->quoted || strlen(n->text) != n->len)
        return YS_STR;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(n->text, nulls[i]) == 0)
            return YS_NULL;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if (strcmp(n->text, bools[i]) == 0)
            return YS_BOOL;
    if (looks_int(n->text))
        return YS_INT;
    if (looks_float(n->text))
        return YS_FLOAT;
    return YS_STR;
}

/* A plain decimal integer scalar into *out. */
static int get_int(struct ctx *c, const char *path, const struct ynode *n, long long *out)
{
    char shown[80];
    if (n->kind != YN_SCALAR || classify(n) != YS_INT)
        return fail(c, n->line, path, "expected an integer, got %s", show_node(n, shown, sizeof(shown)));
    errno = 0;
    long long v = strtoll(n->text, NULL, 10);
    if (errno == ERANGE)
        return fail(c, n->line, path, "%s is out of range", n->text);
    *out = v;
    return SK_OK;
}

static int get_int_range(struct ctx *c, const char *path, const struct ynode *n, long long min, long long max,
                         long long *out)
{
    long long v;
    if (get_int(c, path, n, &v) != SK_OK)
        return SK_ERR;
    if (v < min || v > max)
        return fail(c, n->line, path, "%lld is out of range (%lld..%lld)", v, min, max);
    *out = v;
    return SK_OK;
}

/* A scalar as a string into out (outlen bytes); plain null reads as "". Secrets are
 * never repeated in messages. */
static int get_string(struct ctx *c, const char *path, const struct ynode *n, char *out, size_t outlen,
                      int secret)
{
    char shown[80];
    if (n->kind != YN_SCALAR)
        return fail(c, n->line, path, "expected a string, got %s", show_node(n, shown, sizeof(shown)));
    if (strlen(n->text) != n->len)
        return fail(c, n->line, path, "contains a NUL byte");
    if (n->len >= outlen)
        return fail(c, n->line, path, "%s is too long (at most %zu bytes)",
                    secret ? "the value" : show_text(n->text, n->len, shown, sizeof(shown)), outlen - 1);
    if (classify(n) == YS_NULL)
        out[0] = '\0';
    else
        memcpy(out, n->text, n->len + 1);
    return SK_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Value parsers for the special types                                                  */
/* ---------------------------------------------------------------------------------- */

/* "15m", "90s", "2h", "500ms", "1h30m", or a plain integer number of seconds. */
static int get_duration_ms(struct ctx *c, const char *path, const struct ynode *n, int64_t max_ms, int64_t *out)
{
    char shown[80];
    int64_t total = 0;
    if (n->kind != YN_SCALAR || classify(n) == YS_NULL || strlen(n->text) != n->len)
        goto bad;
    if (classify(n) == YS_INT) {
        long long secs;
        if (get_int(c, path, n, &secs) != SK_OK)
            return SK_ERR;
        if (secs <= 0)
            return fail(c, n->line, path, "must be more than 0, got %lld", secs);
        if (secs > max_ms / 1000)
            return fail(c, n->line, path, "%lld seconds is more than the maximum of %" PRId64 " seconds", secs,
                        max_ms / 1000);
        *out = (int64_t)secs * 1000;
        return SK_OK;
    }
    const char *s = n->text;
    if (*s == '\0')
        goto bad;
    while (*s != '\0') {
        if (!is_digit(*s))
            goto bad;
        int64_t num = 0;
        while (is_digit(*s)) {
            num = num * 10 + (*s - '0');
            if (num > max_ms)
                goto too_big;
            s++;
        }
        int64_t unit;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 1;
            s += 2;
        } else if (*s == 's') {
            unit = 1000;
            s++;
        } else if (*s == 'm') {
            unit = 60 * 1000;
            s++;
        } else if (*s == 'h') {
            unit = 3600 * 1000;
            s++;
        } else {
            goto bad;
        }
        if (num > (max_ms - total) / unit)
            goto too_big;
        total += num * unit;
    }
    if (total <= 0)
        return fail(c, n->line, path, "must be more than 0, got %s", show_node(n, shown, sizeof(shown)));
    *out = total;
    return SK_OK;
too_big:
    return fail(c, n->line, path, "%s is more than the maximum of %" PRId64 " seconds",
                show_node(n, shown, sizeof(shown)), max_ms / 1000);
bad:
    return fail(c, n->line, path,
                "expected a duration like \"15m\", \"90s\", \"2h\", \"500ms\" or a number of seconds, got %s",
                show_node(n, shown, sizeof(shown)));
}

/* "host:port", "[v6]:port" or ":port" (any address). The host must be numeric or
 * "localhost": the daemon binds before it could resolve names reliably. */
static int get_listen(struct ctx *c, const char *path, const struct ynode *n, struct sk_listen *out)
{
    char shown[80], host[INET6_ADDRSTRLEN + 8];
    const char *port_s;
    size_t hlen;
    unsigned char addr[sizeof(struct in6_addr)];
    int v6 = 0;

    if (n->kind != YN_SCALAR || strlen(n->text) != n->len)
        goto bad;
    const char *s = n->text;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad_host;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        port_s = close + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return fail(c, n->line, path, "expected \"host:port\", got %s (write IPv6 addresses as \"[::1]:port\")",
                        show_node(n, shown, sizeof(shown)));
        if (hlen >= sizeof(host))
            goto bad_host;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (hlen == 0)
            snprintf(host, sizeof(host), "0.0.0.0");
        port_s = colon + 1;
    }
    if (v6 ? inet_pton(AF_INET6, host, addr) != 1
           : (inet_pton(AF_INET, host, addr) != 1 && strcmp(host, "localhost") != 0))
        goto bad_host;
    if (port_s[0] == '\0' || strlen(port_s) > 5)
        goto bad;
    for (const char *p = port_s; *p != '\0'; p++)
        if (!is_digit(*p))
            goto bad;
    long port = strtol(port_s, NULL, 10);
    if (port < 1 || port > 65535)
        return fail(c, n->line, path, "port %ld is out of range (1..65535)", port);
    _Static_assert(sizeof(host) <= sizeof(out->host), "listen host buffer");
    memcpy(out->host, host, strlen(host) + 1);
    out->port = (uint16_t)port;
    return SK_OK;
bad_host:
    return fail(c, n->line, path, "%s: the host must be a numeric IPv4 or [IPv6] address or localhost",
                show_node(n, shown, sizeof(shown)));
bad:
    return fail(c, n->line, path, "expected \"host:port\", got %s", show_node(n, shown, sizeof(shown)));
}

/* A YAML node as a JSON value, keeping the types of plain scalars. */
static int to_json(struct ctx *c, const char *path, const struct ynode *n, json_t **out)
{
    char shown[80], kpath[PATH_LEN];
    json_t *j = NULL;
    int rc = SK_ERR;

    if (n->kind == YN_MAP) {
        j = json_object();
        if (j == NULL)
            goto oom;
        for (size_t i = 0; i + 1 < n->nkids; i += 2) {
            const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
            json_t *child = NULL;
            if (k->kind != YN_SCALAR) {
                fail(c, k->line, path, "expected a string key, got %s", show_node(k, shown, sizeof(shown)));
                goto out;
            }
            path_join(kpath, path, k->text, k->len);
            if (strlen(k->text) != k->len) {
                fail(c, k->line, kpath, "the key contains a NUL byte");
                goto out;
            }
            if (json_object_get(j, k->text) != NULL) {
                size_t first = 0;
                for (size_t p = 0; p < i && first == 0; p += 2)
                    if (strcmp(n->kids[p]->text, k->text) == 0 && n->kids[p]->kind == YN_SCALAR)
                        first = n->kids[p]->line;
                fail(c, k->line, kpath, "duplicate key (first at line %zu)", first);
                goto out;
            }
            if (to_json(c, kpath, v, &child) != SK_OK)
                goto out;
            if (json_object_set_new(j, k->text, child) != 0)
                goto oom;
        }
    } else if (n->kind == YN_SEQ) {
        j = json_array();
        if (j == NULL)
            goto oom;
        for (size_t i = 0; i < n->nkids; i++) {
            json_t *child = NULL;
            if (snprintf(kpath, sizeof(kpath), "%s[%zu]", path, i) >= (int)sizeof(kpath))
                kpath[sizeof(kpath) - 1] = '\0';
            if (to_json(c, kpath, n->kids[i], &child) != SK_OK)
                goto out;
            if (json_array_append_new(j, child) != 0)
                goto oom;
        }
    } else {
        switch (classify(n)) {
        case YS_NULL:
            j = json_null();
            break;
        case YS_BOOL:
            j = json_boolean(n->text[0] == 't' || n->text[0] == 'T');
            break;
        case YS_INT: {
            long long v;
            if (get_int(c, path, n, &v) != SK_OK)
                goto out;
            j = json_integer((json_int_t)v);
            break;
        }
        case YS_FLOAT: {
            errno = 0;
            /* strtod does not know YAML's ".inf"; JSON has no infinity anyway. */
            double d = is_inf_or_nan(n->text) ? NAN : strtod(n->text, NULL);
            if (!isfinite(d) || errno == ERANGE) {
                fail(c, n->line, path, "%s cannot be written in JSON (not a finite number)",
                     show_node(n, shown, sizeof(shown)));
                goto out;
            }
            j = json_real(d);
            break;
        }
        case YS_STR:
            j = json_stringn(n->text, n->len);
            if (j == NULL) {
                fail(c, n->line, path, "%s is not valid UTF-8", show_node(n, shown, sizeof(shown)));
                goto out;
            }
            break;
        }
        if (j == NULL)
            goto oom;
    }
    *out = j;
    j = NULL;
    rc = SK_OK;
    goto out;
oom:
    fail(c, n->line, path, "out of memory");
out:
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* The schema                                                                           */
/* ---------------------------------------------------------------------------------- */

enum ftype {
    F_STR,         /* char[size] */
    F_SECRET,      /* char[size], never shown in messages */
    F_NAME,        /* char[size] of [a-z0-9_]+ (plugin names) */
    F_IDENT,       /* char[size] of [A-Za-z0-9_]+ (database names) */
    F_UINT,        /* unsigned in [min, max] */
    F_SIZE,        /* size_t in [min, max] */
    F_PORT,        /* uint16_t in 1..65535 */
    F_LOGLEVEL,    /* enum sk_log_level */
    F_LISTEN,      /* struct sk_listen */
    F_DURATION,    /* int64_t milliseconds in 1..max */
    F_JSON,        /* char * (malloc'd JSON text) from a mapping */
    F_MAP,         /* a nested mapping of `sub` fields, same base */
    F_PLUGIN,      /* struct sk_plugin_conf, a mapping of `sub` fields based on it */
};

struct field {
    const char *key;
    enum ftype type;
    int required;
    size_t off;                 /* of the target in the base struct */
    size_t size;                /* strings: buffer size */
    long long min, max;         /* numbers */
    const struct field *sub;    /* F_MAP, F_PLUGIN */
    size_t nsub;
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define CFG_STR(k, t, req, member)                                                                                \
    {                                                                                                             \
        .key = k, .type = t, .required = req, .off = offsetof(struct sk_config, member),                         \
        .size = sizeof(((struct sk_config *)0)->member)                                                           \
    }
#define CFG_NUM(k, t, member, lo, hi)                                                                             \
    {                                                                                                             \
        .key = k, .type = t, .off = offsetof(struct sk_config, member), .min = lo, .max = hi                     \
    }

static const struct field listen_fields[] = {
    {.key = "client", .type = F_LISTEN, .off = offsetof(struct sk_config, client)},
    {.key = "admin", .type = F_LISTEN, .off = offsetof(struct sk_config, admin)},
};

static const struct field http_fields[] = {
    CFG_NUM("max_body_bytes", F_SIZE, max_body_bytes, 256, 64LL * 1024 * 1024),
    CFG_NUM("idle_timeout_ms", F_UINT, idle_timeout_ms, 100, 3600 * 1000),
    CFG_NUM("max_connections", F_UINT, max_connections, 1, 1000000),
};

static const struct field mariadb_fields[] = {
    CFG_STR("host", F_STR, 1, mariadb.host),
    {.key = "port", .type = F_PORT, .required = 1, .off = offsetof(struct sk_config, mariadb.port)},
    CFG_STR("user", F_STR, 1, mariadb.user),
    CFG_STR("password", F_SECRET, 0, mariadb.password),
    CFG_STR("database", F_IDENT, 1, mariadb.database),
    CFG_NUM("pool_size", F_UINT, mariadb.pool_size, 1, 256),
};

/* Required unless the environment gives them; checked after the walk. */
static const struct field auth_fields[] = {
    CFG_STR("jwt_secret", F_SECRET, 0, jwt_secret),
    CFG_STR("admin_token", F_SECRET, 0, admin_token),
};

static const struct field scheduler_fields[] = {
    CFG_NUM("tick_ms", F_UINT, scheduler_tick_ms, 10, 60000),
};

static const struct field plugin_entry_fields[] = {
    {.key = "name", .type = F_NAME, .required = 1, .off = offsetof(struct sk_plugin_conf, name),
     .size = sizeof(((struct sk_plugin_conf *)0)->name)},
    {.key = "path", .type = F_STR, .off = offsetof(struct sk_plugin_conf, path),
     .size = sizeof(((struct sk_plugin_conf *)0)->path)},
    {.key = "config", .type = F_JSON, .off = offsetof(struct sk_plugin_conf, config_json)},
};

#define PLUGIN_KIND(k, req, member)                                                                               \
    {                                                                                                             \
        .key = k, .type = F_PLUGIN, .required = req, .off = offsetof(struct sk_config, member),                  \
        .sub = plugin_entry_fields, .nsub = NFIELDS(plugin_entry_fields)                                          \
    }
static const struct field plugins_fields[] = {
    PLUGIN_KIND("stock", 1, stock),
    PLUGIN_KIND("queue", 0, queue),
    PLUGIN_KIND("payment", 0, payment),
};

#define CFG_MAP(k, req, fields)                                                                                   \
    {                                                                                                             \
        .key = k, .type = F_MAP, .required = req, .sub = fields, .nsub = NFIELDS(fields)                          \
    }
static const struct field top_fields[] = {
    {.key = "log_level", .type = F_LOGLEVEL, .off = offsetof(struct sk_config, log_level)},
    CFG_NUM("workers", F_UINT, workers, 1, 64),
    CFG_MAP("listen", 0, listen_fields),
    CFG_MAP("http", 0, http_fields),
    CFG_MAP("mariadb", 1, mariadb_fields),
    CFG_MAP("auth", 0, auth_fields),
    {.key = "order_timeout", .type = F_DURATION, .off = offsetof(struct sk_config, order_timeout_ms),
     .max = ORDER_TIMEOUT_MAX_MS},
    CFG_MAP("scheduler", 0, scheduler_fields),
    CFG_STR("plugin_dir", F_STR, 0, plugin_dir),
    CFG_MAP("plugins", 1, plugins_fields),
};

static int walk_map(struct ctx *c, const struct ynode *map, const char *path, size_t parent_line,
                    const struct field *fields, size_t nfields, void *base);

static int check_charset(struct ctx *c, const char *path, const struct ynode *n, const char *s, int upper,
                         const char *what)
{
    char shown[80];
    int ok = s[0] != '\0';
    for (const char *p = s; *p != '\0' && ok; p++)
        ok = (*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '_' || (upper && *p >= 'A' && *p <= 'Z');
    if (!ok)
        return fail(c, n->line, path, "%s must be %s, got %s", what, upper ? "[A-Za-z0-9_]+" : "[a-z0-9_]+",
                    show_node(n, shown, sizeof(shown)));
    return SK_OK;
}

/* Store one value. `key` is the key node (its line is the entry's line). */
static int set_field(struct ctx *c, const struct field *f, const char *path, const struct ynode *key,
                     const struct ynode *val, void *base)
{
    char shown[80];
    char *target = (char *)base + f->off;
    long long v;

    switch (f->type) {
    case F_STR:
    case F_SECRET:
        return get_string(c, path, val, target, f->size, f->type == F_SECRET);
    case F_NAME:
    case F_IDENT:
        if (get_string(c, path, val, target, f->size, 0) != SK_OK)
            return SK_ERR;
        return check_charset(c, path, val, target, f->type == F_IDENT,
                             f->type == F_NAME ? "a plugin name" : "a database name");
    case F_UINT:
        if (get_int_range(c, path, val, f->min, f->max, &v) != SK_OK)
            return SK_ERR;
        *(unsigned *)(void *)target = (unsigned)v;
        return SK_OK;
    case F_SIZE:
        if (get_int_range(c, path, val, f->min, f->max, &v) != SK_OK)
            return SK_ERR;
        *(size_t *)(void *)target = (size_t)v;
        return SK_OK;
    case F_PORT:
        if (get_int_range(c, path, val, 1, 65535, &v) != SK_OK)
            return SK_ERR;
        *(uint16_t *)(void *)target = (uint16_t)v;
        return SK_OK;
    case F_LOGLEVEL: {
        enum sk_log_level level;
        if (val->kind != YN_SCALAR || strlen(val->text) != val->len ||
            sk_log_parse_level(val->text, &level) != SK_OK)
            return fail(c, val->line, path, "expected one of error, warn, info, debug, got %s",
                        show_node(val, shown, sizeof(shown)));
        *(enum sk_log_level *)(void *)target = level;
        return SK_OK;
    }
    case F_LISTEN:
        return get_listen(c, path, val, (struct sk_listen *)(void *)target);
    case F_DURATION:
        return get_duration_ms(c, path, val, f->max, (int64_t *)(void *)target);
    case F_JSON: {
        json_t *j = NULL;
        char **out = (char **)(void *)target;
        if (val->kind == YN_SCALAR && classify(val) == YS_NULL) {
            j = json_object(); /* `config:` with everything commented out */
        } else if (val->kind != YN_MAP) {
            return fail(c, val->line, path, "expected a mapping, got %s", show_node(val, shown, sizeof(shown)));
        } else if (to_json(c, path, val, &j) != SK_OK) {
            return SK_ERR;
        }
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text == NULL)
            return fail(c, val->line, path, "out of memory");
        free(*out);
        *out = text;
        return SK_OK;
    }
    case F_MAP:
    case F_PLUGIN: {
        void *sub_base = base;
        if (val->kind != YN_MAP && !(val->kind == YN_SCALAR && classify(val) == YS_NULL))
            return fail(c, val->line, path, "expected a mapping, got %s", show_node(val, shown, sizeof(shown)));
        if (f->type == F_PLUGIN) {
            struct sk_plugin_conf *pc = (struct sk_plugin_conf *)(void *)target;
            sub_base = pc;
            pc->present = 1;
            if (snprintf(pc->where, sizeof(pc->where), "%s:%zu", c->name, key->line) >= (int)sizeof(pc->where))
                return fail(c, key->line, path, "the file name is too long");
        }
        if (val->kind == YN_MAP) {
            if (walk_map(c, val, path, key->line, f->sub, f->nsub, sub_base) != SK_OK)
                return SK_ERR;
        } else if (walk_map(c, NULL, path, key->line, f->sub, f->nsub, sub_base) != SK_OK) {
            return SK_ERR;
        }
        if (f->type == F_PLUGIN) {
            struct sk_plugin_conf *pc = (struct sk_plugin_conf *)(void *)target;
            if (pc->config_json == NULL && (pc->config_json = strdup("{}")) == NULL)
                return fail(c, key->line, path, "out of memory");
        }
        return SK_OK;
    }
    }
    return fail(c, val->line, path, "internal error: unknown field type");
}

/* Walk the pairs of `map` (NULL: an empty mapping written as null) against `fields`:
 * unknown and duplicate keys are errors, each known key is stored, and missing
 * required keys are reported at `parent_line`. */
static int walk_map(struct ctx *c, const struct ynode *map, const char *path, size_t parent_line,
                    const struct field *fields, size_t nfields, void *base)
{
    char shown[80], kpath[PATH_LEN];
    size_t seen[16] = {0};
    size_t npairs = map ? map->nkids / 2 : 0;

    if (nfields > NFIELDS(seen))
        return fail(c, parent_line, path[0] ? path : NULL, "internal error: too many fields");
    for (size_t i = 0; i < npairs; i++) {
        const struct ynode *k = map->kids[2 * i], *v = map->kids[2 * i + 1];
        size_t f;
        if (k->kind != YN_SCALAR)
            return fail(c, k->line, path[0] ? path : NULL, "expected a key, got %s",
                        show_node(k, shown, sizeof(shown)));
        path_join(kpath, path, k->text, k->len);
        for (f = 0; f < nfields; f++)
            if (strlen(k->text) == k->len && strcmp(fields[f].key, k->text) == 0)
                break;
        if (f == nfields)
            return fail(c, k->line, kpath, "unknown key");
        if (seen[f] != 0)
            return fail(c, k->line, kpath, "duplicate key (first at line %zu)", seen[f]);
        seen[f] = k->line;
        if (set_field(c, &fields[f], kpath, k, v, base) != SK_OK)
            return SK_ERR;
    }
    for (size_t f = 0; f < nfields; f++) {
        if (fields[f].required && seen[f] == 0) {
            path_join(kpath, path, fields[f].key, strlen(fields[f].key));
            return fail(c, parent_line, kpath, "missing required key");
        }
    }
    return SK_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Checks across keys, defaults, environment                                           */
/* ---------------------------------------------------------------------------------- */

/* The value node of `key` in mapping `map`, or NULL. */
static const struct ynode *lookup(const struct ynode *map, const char *key, const struct ynode **key_node)
{
    if (map == NULL || map->kind != YN_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct ynode *k = map->kids[i];
        if (k->kind == YN_SCALAR && strlen(k->text) == k->len && strcmp(k->text, key) == 0) {
            if (key_node != NULL)
                *key_node = k;
            return map->kids[i + 1];
        }
    }
    return NULL;
}

/* The line of `section.key` when written, else of `section`, else 1. */
static size_t line_of(const struct ctx *c, const char *section, const char *key)
{
    const struct ynode *sk = NULL, *kk = NULL;
    const struct ynode *sv = lookup(c->root, section, &sk);
    if (sv != NULL && lookup(sv, key, &kk) != NULL)
        return kk->line;
    return sk != NULL ? sk->line : 1;
}

static int apply_secret(struct ctx *c, const char *key, const char *env, char *value, size_t size)
{
    char path[64];
    size_t line = line_of(c, "auth", key);
    const struct ynode *auth = lookup(c->root, "auth", NULL);
    const char *from_env = getenv(env);

    snprintf(path, sizeof(path), "auth.%s", key);
    if (from_env != NULL) {
        size_t len = strlen(from_env);
        if (len >= size)
            return fail(c, line, path, "$%s is too long (%zu bytes, at most %zu)", env, len, size - 1);
        if (len < SECRET_MIN_BYTES)
            return fail(c, line, path, "$%s is too short (%zu bytes, at least %d)", env, len, SECRET_MIN_BYTES);
        memcpy(value, from_env, len + 1);
        return SK_OK;
    }
    if (lookup(auth, key, NULL) == NULL)
        return fail(c, line, path, "missing required key (or set $%s)", env);
    if (strlen(value) < SECRET_MIN_BYTES)
        return fail(c, line, path, "too short (%zu bytes, at least %d)", strlen(value), SECRET_MIN_BYTES);
    return SK_OK;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static int check_listen_overlap(struct ctx *c)
{
    const struct sk_listen *client = &c->cfg.client, *admin = &c->cfg.admin;
    if (client->port != admin->port)
        return SK_OK;
    if (strcmp(client->host, admin->host) != 0 && !is_wildcard(client->host) && !is_wildcard(admin->host))
        return SK_OK;
    /* Blame the key that was written: when only one was, the other is the default. */
    int blame_admin = lookup(lookup(c->root, "listen", NULL), "admin", NULL) != NULL;
    const struct sk_listen *mine = blame_admin ? admin : client, *other = blame_admin ? client : admin;
    return fail(c, line_of(c, "listen", blame_admin ? "admin" : "client"),
                blame_admin ? "listen.admin" : "listen.client", "port %u of %s is already taken by listen.%s (%s)",
                (unsigned)mine->port, mine->host, blame_admin ? "client" : "admin", other->host);
}

static void set_defaults(struct sk_config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->log_level = SK_LOG_INFO;
    cfg->workers = cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
    snprintf(cfg->client.host, sizeof(cfg->client.host), "127.0.0.1");
    cfg->client.port = 8080;
    snprintf(cfg->admin.host, sizeof(cfg->admin.host), "127.0.0.1");
    cfg->admin.port = 8081;
    cfg->max_body_bytes = 16384;
    cfg->idle_timeout_ms = 10000;
    cfg->max_connections = 20000;
    cfg->mariadb.pool_size = 4;
    cfg->order_timeout_ms = 15 * 60 * 1000;
    cfg->scheduler_tick_ms = 250;
    memcpy(cfg->plugin_dir, SK_PLUGIN_DIR, sizeof(SK_PLUGIN_DIR));
}

static void conf_release(struct sk_config *cfg)
{
    free(cfg->stock.config_json);
    free(cfg->queue.config_json);
    free(cfg->payment.config_json);
    memset(cfg, 0, sizeof(*cfg));
}

static int load(struct ctx *c)
{
    if (strlen(c->name) >= sizeof(c->cfg.path))
        return fail(c, 1, NULL, "the file name is too long (at most %zu bytes)", sizeof(c->cfg.path) - 1);
    if (c->len > CONFIG_MAX_BYTES)
        return fail(c, 1, NULL, "the file is larger than %d bytes; is it a config file?", CONFIG_MAX_BYTES);
    memcpy(c->cfg.path, c->name, strlen(c->name) + 1);
    set_defaults(&c->cfg);
    if (build_tree(c) != SK_OK)
        return SK_ERR;
    if (walk_map(c, c->root, "", 1, top_fields, NFIELDS(top_fields), &c->cfg) != SK_OK)
        return SK_ERR;
    if (c->cfg.plugin_dir[0] == '\0')
        return fail(c, line_of(c, "plugin_dir", ""), "plugin_dir", "must not be empty");
    if (c->cfg.mariadb.host[0] == '\0')
        return fail(c, line_of(c, "mariadb", "host"), "mariadb.host", "must not be empty");
    if (c->cfg.mariadb.user[0] == '\0')
        return fail(c, line_of(c, "mariadb", "user"), "mariadb.user", "must not be empty");
    if (check_listen_overlap(c) != SK_OK)
        return SK_ERR;
    if (apply_secret(c, "jwt_secret", ENV_JWT_SECRET, c->cfg.jwt_secret, sizeof(c->cfg.jwt_secret)) != SK_OK)
        return SK_ERR;
    if (apply_secret(c, "admin_token", ENV_ADMIN_TOKEN, c->cfg.admin_token, sizeof(c->cfg.admin_token)) != SK_OK)
        return SK_ERR;
    return SK_OK;
}

int sk_config_load_string(const char *name, const char *text, size_t len, struct sk_config *cfg, char *err)
{
    struct ctx *c = calloc(1, sizeof(*c));
    int rc = SK_ERR;

    if (c == NULL) {
        snprintf(err, SK_CONFIG_ERRLEN, "%s: out of memory", name);
        goto out;
    }
    c->name = name;
    c->err = err;
    c->text = text;
    c->len = len;
    if (load(c) != SK_OK)
        goto out;
    *cfg = c->cfg;
    memset(&c->cfg, 0, sizeof(c->cfg)); /* the caller owns the allocations now */
    rc = SK_OK;
out:
    if (rc != SK_OK)
        memset(cfg, 0, sizeof(*cfg));
    if (c != NULL) {
        conf_release(&c->cfg);
        node_free(c->root);
        free(c);
    }
    return rc;
}

/* Read all of `path` (at most CONFIG_MAX_BYTES + 1 bytes, so that the limit shows). */
static int read_file(const char *path, char **text, size_t *len, char *err)
{
    char ebuf[128];
    char *buf = NULL;
    size_t have = 0, cap = 0;
    int rc = SK_ERR;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, SK_CONFIG_ERRLEN, "%s: cannot open: %s", path, strerror_r(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    for (;;) {
        if (have == cap) {
            if (cap > CONFIG_MAX_BYTES)
                break; /* load() reports the size */
            size_t ncap = cap ? cap * 2 : 4096;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                snprintf(err, SK_CONFIG_ERRLEN, "%s: out of memory", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, SK_CONFIG_ERRLEN, "%s: cannot read: %s", path, strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    *text = buf;
    *len = have;
    buf = NULL;
    rc = SK_OK;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int sk_config_load(const char *path, struct sk_config *cfg, char *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = SK_ERR;

    if (read_file(path, &text, &len, err) != SK_OK) {
        memset(cfg, 0, sizeof(*cfg));
        goto out;
    }
    rc = sk_config_load_string(path, text, len, cfg, err);
out:
    free(text);
    return rc;
}

void sk_config_free(struct sk_config *cfg)
{
    if (cfg != NULL)
        conf_release(cfg);
}
