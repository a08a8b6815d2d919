/* The shared Redis config keys of the plugins; see redis_conf.h. */
#include "redis_conf.h"
#include "say.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void sk_rconf_defaults(struct sk_rconn_conf *conf, char *prefix, size_t prefix_len)
{
    memset(conf, 0, sizeof(*conf));
    snprintf(conf->host_name, sizeof(conf->host_name), "127.0.0.1");
    conf->port = 6379;
    conf->connect_timeout_ms = 1000;
    conf->command_timeout_ms = 1000;
    snprintf(prefix, prefix_len, "sk");
}

int sk_rconf_key(struct sk_rconn_conf *conf, char *prefix, size_t prefix_len, const char *key, const json_t *v,
                 char *errbuf)
{
    char tmp[256];
    long long n;
    int rc = SK_ERR;

    if (strcmp(key, "host") == 0) {
        if (sk_conf_str(key, v, 1, conf->host_name, sizeof(conf->host_name), errbuf) != SK_OK)
            goto out;
    } else if (strcmp(key, "port") == 0) {
        if (sk_conf_int(key, v, 1, 65535, &n, errbuf) != SK_OK)
            goto out;
        conf->port = (int)n;
    } else if (strcmp(key, "db") == 0) {
        if (sk_conf_int(key, v, 0, 65535, &n, errbuf) != SK_OK)
            goto out;
        conf->db = (int)n;
    } else if (strcmp(key, "password") == 0) {
        if (json_is_null(v))
            conf->password[0] = '\0';
        else if (sk_conf_str(key, v, 0, conf->password, sizeof(conf->password), errbuf) != SK_OK)
            goto out;
    } else if (strcmp(key, "connect_timeout_ms") == 0) {
        if (sk_conf_int(key, v, 1, 600000, &n, errbuf) != SK_OK)
            goto out;
        conf->connect_timeout_ms = (unsigned)n;
    } else if (strcmp(key, "command_timeout_ms") == 0) {
        if (sk_conf_int(key, v, 1, 600000, &n, errbuf) != SK_OK)
            goto out;
        conf->command_timeout_ms = (unsigned)n;
    } else if (strcmp(key, "key_prefix") == 0) {
        if (sk_conf_str(key, v, 1, tmp, prefix_len < sizeof(tmp) ? prefix_len : sizeof(tmp), errbuf) != SK_OK)
            goto out;
        /* A brace would change the hash tag that keeps an item on one slot. */
        if (strpbrk(tmp, "{} \t\r\n") != NULL) {
            say(errbuf, "config key key_prefix: must not contain braces or spaces");
            goto out;
        }
        memcpy(prefix, tmp, strlen(tmp) + 1);
    } else {
        rc = 0;
        goto out;
    }
    rc = 1;
out:
    return rc;
}

int sk_rconf_resolve(struct sk_rconn_conf *conf, char *errbuf)
{
    static const int families[] = {AF_INET, AF_INET6};
    int rc = SK_ERR, gai = 0;

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]) && rc != SK_OK; i++) {
        struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        gai = getaddrinfo(conf->host_name, NULL, &hints, &res);
        if (gai != 0)
            continue;
        const void *addr = res->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                                                     : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        if (inet_ntop(res->ai_family, addr, conf->host, (socklen_t)sizeof(conf->host)) != NULL)
            rc = SK_OK;
        freeaddrinfo(res);
    }
    if (rc != SK_OK)
        say(errbuf, "config key host: cannot resolve \"%s\": %s", conf->host_name,
            gai != 0 ? gai_strerror(gai) : "no usable address");
    return rc;
}
