/* The plugins' config helpers; see conf.h. */
#include "conf.h"
#include "say.h"

#include <string.h>

const char *sk_conf_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

int sk_conf_int(const char *key, const json_t *v, long long min, long long max, long long *out, char *errbuf)
{
    if (!json_is_integer(v)) {
        say(errbuf, "config key %s: must be an integer from %lld to %lld, not %s", key, min, max, sk_conf_type_name(v));
        return SK_ERR;
    }
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        say(errbuf, "config key %s: %lld is out of range (%lld to %lld)", key, (long long)json_integer_value(v), min,
            max);
        return SK_ERR;
    }
    *out = json_integer_value(v);
    return SK_OK;
}

int sk_conf_str(const char *key, const json_t *v, size_t minlen, char *out, size_t outlen, char *errbuf)
{
    if (!json_is_string(v)) {
        say(errbuf, "config key %s: must be a string, not %s", key, sk_conf_type_name(v));
        return SK_ERR;
    }
    if (json_string_length(v) < minlen || json_string_length(v) >= outlen ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        say(errbuf, "config key %s: must be %zu to %zu bytes without NUL", key, minlen, outlen - 1);
        return SK_ERR;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return SK_OK;
}
