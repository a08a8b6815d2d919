/*
 * The config keys that every plugin talking to the stock plugin's Redis shares
 * (host, port, db, password, connect_timeout_ms, command_timeout_ms, key_prefix),
 * with the same names, types, ranges, defaults and messages as the redis stock
 * plugin (docs/plugins.md), so that a queue plugin pointed at the same section
 * finds the same keys (conf.h has the helpers for the plugins' own keys).
 *
 * Internal to the plugins (hidden symbols in plugins/common/libskredis.la).
 */
#ifndef SK_REDIS_CONF_H
#define SK_REDIS_CONF_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"
#include "redis_conn.h"

/* The names of the keys sk_rconf_key knows, for "unknown key (known: …)". */
#define SK_RCONF_KEYS "host, port, db, password, connect_timeout_ms, command_timeout_ms, key_prefix"

/* Fill conf with the defaults (127.0.0.1:6379, db 0, no password, 1000 ms for both
 * timeouts, client_name NULL) and prefix (prefix_len bytes) with "sk". */
void sk_rconf_defaults(struct sk_rconn_conf *conf, char *prefix, size_t prefix_len);

/* Parse one config key: 1 when `key` is one of SK_RCONF_KEYS and its value `v` is
 * good (written into conf or prefix), 0 when `key` is not one of them (nothing
 * changes), SK_ERR with "config key KEY: problem" in errbuf (SK_ERRLEN) when the
 * value is bad. */
int sk_rconf_key(struct sk_rconn_conf *conf, char *prefix, size_t prefix_len, const char *key, const json_t *v,
                 char *errbuf);

/* Resolve conf->host_name into conf->host, once, on the main thread (hiredis
 * would otherwise call the blocking getaddrinfo() on an event loop at every
 * reconnect). IPv4 first, as hiredis does. SK_ERR with errbuf when it cannot. */
int sk_rconf_resolve(struct sk_rconn_conf *conf, char *errbuf);

#endif
