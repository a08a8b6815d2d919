/*
 * A reservation as a Kafka record: key = the order number (so that every copy of
 * one order lands on one partition), value = an object with every field of
 * struct sk_reservation, integers as JSON integers:
 *
 *   {"order_no":"…","user_id":7,"activity_id":1,"item_id":3,"seq":1,
 *    "price_cents":990,"reserved_at_ms":…,"expires_at_ms":…}
 *
 * A reservation-log entry that the relay could not read travels as
 * {"sk_bad_record":{"raw":"…","why":"…","source":"…"}} so that it reaches the
 * host's parking like any other bad record, instead of being dropped in Redis.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kafka_rest.h"
#include "say.h"

json_t *kr_record_of(const struct sk_reservation *r, char *errbuf)
{
    json_t *rec = NULL, *value = NULL;
    size_t len;

    if (r->order_no == NULL || (len = strlen(r->order_no)) == 0 || len > KR_ORDER_NO_MAX) {
        say(errbuf, "reservation without a valid order number (1 to %d bytes)", KR_ORDER_NO_MAX);
        goto out;
    }
    if (r->user_id > INT64_MAX || r->activity_id > INT64_MAX || r->item_id > INT64_MAX) {
        say(errbuf, "order %s: an id above 2^63-1 does not fit a JSON integer", r->order_no);
        goto out;
    }
    value = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "order_no", r->order_no, "user_id",
                      (json_int_t)r->user_id, "activity_id", (json_int_t)r->activity_id, "item_id",
                      (json_int_t)r->item_id, "seq", (json_int_t)r->seq, "price_cents", (json_int_t)r->price_cents,
                      "reserved_at_ms", (json_int_t)r->reserved_at_ms, "expires_at_ms", (json_int_t)r->expires_at_ms);
    if (value == NULL) {
        say(errbuf, "order %s: out of memory, or an order number that is not UTF-8", r->order_no);
        goto out;
    }
    rec = json_pack("{s:s, s:o}", "key", r->order_no, "value", value);
    value = NULL; /* "o" steals it, even on failure */
    if (rec == NULL)
        say(errbuf, "out of memory");
out:
    if (value != NULL)
        json_decref(value);
    return rec;
}

json_t *kr_record_of_bad(const struct sk_queue_bad_record *b)
{
    /* Non-UTF-8 text would make json_pack fail: keep what is printable ASCII. */
    char raw[4096], why[SK_ERRLEN], source[256];
    const char *in[3] = {b->raw ? b->raw : "", b->why ? b->why : "", b->source ? b->source : ""};
    char *out[3] = {raw, why, source};
    size_t cap[3] = {sizeof(raw), sizeof(why), sizeof(source)};

    for (int i = 0; i < 3; i++) {
        size_t j = 0;
        for (const unsigned char *p = (const unsigned char *)in[i]; *p && j + 1 < cap[i]; p++)
            out[i][j++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
        out[i][j] = '\0';
    }
    return json_pack("{s:s, s:{s:{s:s, s:s, s:s}}}", "key", source, "value", "sk_bad_record", "raw", raw, "why", why,
                     "source", source);
}

/* field: an integer from min to max. */
static int field(const json_t *value, const char *name, json_int_t min, json_int_t max, json_int_t *out, char *errbuf)
{
    const json_t *v = json_object_get(value, name);
    if (v == NULL) {
        say(errbuf, "no %s", name);
        return SK_ERR;
    }
    if (!json_is_integer(v)) {
        say(errbuf, "%s is not an integer", name);
        return SK_ERR;
    }
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        say(errbuf, "%s %" JSON_INTEGER_FORMAT " is out of range", name, json_integer_value(v));
        return SK_ERR;
    }
    *out = json_integer_value(v);
    return SK_OK;
}

int kr_record_parse(const json_t *value, struct sk_reservation *out, const char **raw, const char **source,
                    char *errbuf)
{
    struct sk_reservation r = {0};
    const json_t *v, *bad;
    json_int_t n;

    *raw = NULL;
    *source = NULL;
    if (!json_is_object(value)) {
        say(errbuf, "the record's value is not a JSON object");
        return SK_ERR;
    }
    bad = json_object_get(value, "sk_bad_record");
    if (bad != NULL) {
        const json_t *w = json_object_get(bad, "why");
        *raw = json_string_value(json_object_get(bad, "raw"));
        *source = json_string_value(json_object_get(bad, "source"));
        say(errbuf, "in the reservation log: %s", json_is_string(w) ? json_string_value(w) : "unreadable entry");
        return SK_ERR;
    }
    v = json_object_get(value, "order_no");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > KR_ORDER_NO_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        say(errbuf, "order_no is missing or not a string of 1 to %d bytes", KR_ORDER_NO_MAX);
        return SK_ERR;
    }
    r.order_no = json_string_value(v);
    if (field(value, "user_id", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.user_id = (uint64_t)n;
    if (field(value, "activity_id", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.activity_id = (uint64_t)n;
    if (field(value, "item_id", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.item_id = (uint64_t)n;
    if (field(value, "seq", 1, UINT32_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.seq = (uint32_t)n;
    if (field(value, "price_cents", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.price_cents = n;
    if (field(value, "reserved_at_ms", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.reserved_at_ms = n;
    if (field(value, "expires_at_ms", 0, INT64_MAX, &n, errbuf) != SK_OK)
        return SK_ERR;
    r.expires_at_ms = n;
    *out = r;
    return SK_OK;
}
