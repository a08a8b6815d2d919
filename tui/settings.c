/* The console's settings: YAML file, environment, flags; see settings.h. */
#include "settings.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seckill/plugin.h>
#include <yaml.h>

const char sk_con_settings_usage[] =
    "usage: seckill-console [-c FILE] [--url URL] [--token TOKEN] [--timeout-ms N] [--mono]\n"
    "\n"
    "The operator console of seckilld, over its admin API.\n"
    "\n"
    "  -c, --config FILE   YAML file with admin_url, token, timeout_ms, monochrome\n"
    "                      (default: ~/.config/seckill/console.yaml when it exists)\n"
    "  -u, --url URL       admin API base URL (default " SK_CON_DEFAULT_URL ")\n"
    "  -t, --token TOKEN   admin token; prefer SECKILL_ADMIN_TOKEN, which ps cannot see\n"
    "      --timeout-ms N  give up on a request after N ms (100..60000, default 5000)\n"
    "  -m, --mono          no colours (NO_COLOR in the environment does the same)\n"
    "  -h, --help          this text\n"
    "  -V, --version       the version\n"
    "\n"
    "Keys: ? shows them all, q leaves. See docs/console.md.\n";

void sk_con_settings_defaults(struct sk_con_settings *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->admin_url, sizeof(s->admin_url), "%s", SK_CON_DEFAULT_URL);
    s->timeout_ms = 5000;
}

static int check_url(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static int parse_timeout(const char *text, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 100 || v > 60000)
        return SK_ERR;
    *out = v;
    return SK_OK;
}

/* A scalar node's text, or NULL when the node is not a scalar. */
static const char *scalar(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int sk_con_settings_apply_yaml(struct sk_con_settings *s, const char *name, const char *text, size_t len, char *err,
                               size_t errlen)
{
    struct sk_con_settings next = *s;
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0, rc = SK_ERR;
    yaml_node_t *root;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot start the YAML parser", name);
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu: %s", name, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "not valid YAML");
        goto out;
    }
    have_doc = 1;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) { /* an empty file sets nothing */
        rc = SK_OK;
        *s = next;
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%zu: the file must be a mapping of keys (admin_url: …, token: …)", name,
                 root->start_mark.line + 1);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
        const char *key = scalar(kn), *val = scalar(vn);
        size_t line = kn != NULL ? kn->start_mark.line + 1 : 0;
        if (key == NULL) {
            snprintf(err, errlen, "%s:%zu: keys must be plain words", name, line);
            goto out;
        }
        if (val == NULL) {
            snprintf(err, errlen, "%s:%zu: %s: must be a single value", name, line, key);
            goto out;
        }
        if (strcmp(key, "admin_url") == 0) {
            if (!check_url(val) || strlen(val) >= sizeof(next.admin_url)) {
                snprintf(err, errlen, "%s:%zu: admin_url: must be an http:// or https:// URL", name, line);
                goto out;
            }
            snprintf(next.admin_url, sizeof(next.admin_url), "%s", val);
        } else if (strcmp(key, "token") == 0) {
            if (val[0] == '\0' || strlen(val) >= sizeof(next.token)) {
                snprintf(err, errlen, "%s:%zu: token: must be 1 to %zu bytes", name, line, sizeof(next.token) - 1);
                goto out;
            }
            snprintf(next.token, sizeof(next.token), "%s", val);
        } else if (strcmp(key, "timeout_ms") == 0) {
            if (parse_timeout(val, &next.timeout_ms) != SK_OK) {
                snprintf(err, errlen, "%s:%zu: timeout_ms: must be a number from 100 to 60000", name, line);
                goto out;
            }
        } else if (strcmp(key, "monochrome") == 0) {
            if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0)
                next.monochrome = 1;
            else if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0)
                next.monochrome = 0;
            else {
                snprintf(err, errlen, "%s:%zu: monochrome: must be true or false", name, line);
                goto out;
            }
        } else {
            snprintf(err, errlen, "%s:%zu: %s: unknown key (known: admin_url, token, timeout_ms, monochrome)", name,
                     line, key);
            goto out;
        }
    }
    *s = next;
    rc = SK_OK;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    return rc;
}

int sk_con_settings_apply_file(struct sk_con_settings *s, const char *path, char *err, size_t errlen)
{
    int rc = SK_ERR;
    char *text = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len + 4096 > cap) {
            if (cap >= (1u << 20)) {
                snprintf(err, errlen, "%s: larger than 1 MiB, not a console config", path);
                goto out;
            }
            cap = cap ? cap * 2 : 4096;
            char *p = realloc(text, cap);
            if (p == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            text = p;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read it", path);
        goto out;
    }
    if ((rc = sk_con_settings_apply_yaml(s, path, text ? text : "", len, err, errlen)) == SK_OK)
        snprintf(s->file, sizeof(s->file), "%s", path);
out:
    if (f != NULL)
        fclose(f);
    free(text);
    return rc;
}

enum sk_con_settings_result sk_con_settings_resolve(struct sk_con_settings *s, int argc, char **argv,
                                                    const char *env_token, const char *env_no_color, const char *home,
                                                    const char *xdg, char *err, size_t errlen)
{
    enum { OPT_TIMEOUT = 256 };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},  {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"mono", no_argument, NULL, 'm'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *url = NULL, *token = NULL, *timeout = NULL;
    int mono = 0, c;
    struct sk_con_settings next;
    char deflt[600];

    sk_con_settings_defaults(&next);
    optind = 0; /* GNU: start over, so the parser can be run again (tests) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:u:t:mhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            file = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case OPT_TIMEOUT:
            timeout = optarg;
            break;
        case 'm':
            mono = 1;
            break;
        case 'h':
            return SK_CON_SETTINGS_HELP;
        case 'V':
            return SK_CON_SETTINGS_VERSION;
        case ':':
            snprintf(err, errlen, "%s needs a value (see --help)", argv[optind - 1]);
            return SK_CON_SETTINGS_ERROR;
        default:
            snprintf(err, errlen, "unknown option %s (see --help)", argv[optind - 1]);
            return SK_CON_SETTINGS_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", argv[optind]);
        return SK_CON_SETTINGS_ERROR;
    }

    if (file == NULL) {
        deflt[0] = '\0';
        if (xdg != NULL && xdg[0] != '\0')
            snprintf(deflt, sizeof(deflt), "%s/seckill/console.yaml", xdg);
        else if (home != NULL && home[0] != '\0')
            snprintf(deflt, sizeof(deflt), "%s/.config/seckill/console.yaml", home);
        if (deflt[0] != '\0' && access(deflt, F_OK) == 0)
            file = deflt;
    }
    if (file != NULL && sk_con_settings_apply_file(&next, file, err, errlen) != SK_OK)
        return SK_CON_SETTINGS_ERROR;
    if (env_token != NULL && env_token[0] != '\0')
        snprintf(next.token, sizeof(next.token), "%s", env_token);
    if (env_no_color != NULL && env_no_color[0] != '\0')
        next.monochrome = 1;
    if (url != NULL) {
        if (!check_url(url) || strlen(url) >= sizeof(next.admin_url)) {
            snprintf(err, errlen, "--url: must be an http:// or https:// URL");
            return SK_CON_SETTINGS_ERROR;
        }
        snprintf(next.admin_url, sizeof(next.admin_url), "%s", url);
    }
    if (token != NULL) {
        if (token[0] == '\0' || strlen(token) >= sizeof(next.token)) {
            snprintf(err, errlen, "--token: must be 1 to %zu bytes", sizeof(next.token) - 1);
            return SK_CON_SETTINGS_ERROR;
        }
        snprintf(next.token, sizeof(next.token), "%s", token);
    }
    if (timeout != NULL && parse_timeout(timeout, &next.timeout_ms) != SK_OK) {
        snprintf(err, errlen, "--timeout-ms: must be a number from 100 to 60000");
        return SK_CON_SETTINGS_ERROR;
    }
    if (mono)
        next.monochrome = 1;
    if (next.token[0] == '\0') {
        snprintf(err, errlen, "no admin token: set SECKILL_ADMIN_TOKEN, give --token, or write token: in %s",
                 file != NULL ? file : "~/.config/seckill/console.yaml");
        return SK_CON_SETTINGS_ERROR;
    }
    *s = next;
    return SK_CON_SETTINGS_RUN;
}
