/*
 * The small jansson helpers that every plugin's config keys use, so every plugin
 * words a bad key the same way: "config key KEY: problem". Messages go to a
 * caller's buffer of SK_ERRLEN bytes.
 *
 * Internal to the plugins (plugins/common/libskconf.la, hidden symbols).
 */
#ifndef SK_PLUGIN_CONF_H
#define SK_PLUGIN_CONF_H

#include <stddef.h>

#include <jansson.h>

/* "a string", "an integer", … for messages. Static. */
const char *sk_conf_type_name(const json_t *v);

/* An integer key in [min, max] into *out; SK_ERR with errbuf otherwise (*out
 * untouched). */
int sk_conf_int(const char *key, const json_t *v, long long min, long long max, long long *out, char *errbuf);

/* A string key of minlen to outlen - 1 bytes without NUL, copied into out; SK_ERR
 * with errbuf otherwise (out untouched). */
int sk_conf_str(const char *key, const json_t *v, size_t minlen, char *out, size_t outlen, char *errbuf);

#endif
