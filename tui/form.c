/* The activity form's model and validation; see form.h. */
#include "form.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <seckill/plugin.h>

#include "core/timeutil.h"
#include "format.h"

/* Limits of the admin API (docs/api.md). */
#define NAME_MAX_BYTES  256
#define SKU_MAX_BYTES   64
#define TITLE_MAX_BYTES 256
#define STOCK_MAX       100000000LL
#define LIMIT_MAX       1000LL

static const char *const head_labels[SK_CON_F_HEAD_COUNT] = {"Name", "Publish at", "Starts at", "Ends at"};
static const char *const col_labels[SK_CON_FI_COUNT] = {"SKU", "Title", "Price", "Seckill price", "Stock", "Limit"};

/* --- one field ----------------------------------------------------------------- */

static int is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

void sk_con_field_set(struct sk_con_field *fl, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof(fl->text)) {
        n = sizeof(fl->text) - 1;
        while (n > 0 && is_cont(text[n]))
            n--;
    }
    memcpy(fl->text, text, n);
    fl->text[n] = '\0';
    fl->len = n;
    fl->cur = n;
}

int sk_con_field_insert(struct sk_con_field *fl, const char *utf8, size_t n)
{
    if (n == 0 || fl->len + n >= sizeof(fl->text) || !sk_con_utf8_printable(utf8, n))
        return SK_ERR;
    memmove(fl->text + fl->cur + n, fl->text + fl->cur, fl->len - fl->cur + 1);
    memcpy(fl->text + fl->cur, utf8, n);
    fl->len += n;
    fl->cur += n;
    return SK_OK;
}

void sk_con_field_left(struct sk_con_field *fl)
{
    while (fl->cur > 0) {
        fl->cur--;
        if (!is_cont(fl->text[fl->cur]))
            break;
    }
}

void sk_con_field_right(struct sk_con_field *fl)
{
    if (fl->cur < fl->len)
        fl->cur++;
    while (fl->cur < fl->len && is_cont(fl->text[fl->cur]))
        fl->cur++;
}

void sk_con_field_backspace(struct sk_con_field *fl)
{
    size_t end = fl->cur;
    sk_con_field_left(fl);
    memmove(fl->text + fl->cur, fl->text + end, fl->len - end + 1);
    fl->len -= end - fl->cur;
}

void sk_con_field_delete(struct sk_con_field *fl)
{
    size_t start = fl->cur;
    sk_con_field_right(fl);
    size_t end = fl->cur;
    memmove(fl->text + start, fl->text + end, fl->len - end + 1);
    fl->len -= end - start;
    fl->cur = start;
}

void sk_con_field_home(struct sk_con_field *fl)
{
    fl->cur = 0;
}

void sk_con_field_end(struct sk_con_field *fl)
{
    fl->cur = fl->len;
}

int sk_con_field_cursor_col(const struct sk_con_field *fl)
{
    char before[SK_CON_FIELD_SIZE];
    memcpy(before, fl->text, fl->cur);
    before[fl->cur] = '\0';
    return sk_con_str_width(before);
}

size_t sk_con_field_view_start(const struct sk_con_field *fl, int width)
{
    char part[SK_CON_FIELD_SIZE];
    size_t start = 0;
    for (;;) {
        memcpy(part, fl->text + start, fl->cur - start);
        part[fl->cur - start] = '\0';
        /* the cursor's own cell must fit too */
        if (start >= fl->cur || sk_con_str_width(part) < width)
            break;
        start++;
        while (start < fl->cur && is_cont(fl->text[start]))
            start++;
    }
    return start;
}

/* --- the form ------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (q == NULL) {
        fputs("seckill-console: out of memory\n", stderr);
        abort();
    }
    return q;
}

/* Make room for one more item at position `at` and return it, zeroed. */
static struct sk_con_form_item *insert_item(struct sk_con_form *f, size_t at)
{
    if (f->n_items == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->items = xrealloc(f->items, f->cap * sizeof(*f->items));
    }
    memmove(&f->items[at + 1], &f->items[at], (f->n_items - at) * sizeof(*f->items));
    memset(&f->items[at], 0, sizeof(f->items[at]));
    f->n_items++;
    sk_con_field_set(&f->items[at].f[SK_CON_FI_LIMIT], "1");
    return &f->items[at];
}

void sk_con_form_init_new(struct sk_con_form *f)
{
    memset(f, 0, sizeof(*f));
    insert_item(f, 0);
}

/* Money as a field shows it: "3999.00" (no currency sign, so it edits easily). */
static void money_field(struct sk_con_field *fl, int64_t cents)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    sk_con_field_set(fl, buf);
}

static void int_field(struct sk_con_field *fl, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    sk_con_field_set(fl, buf);
}

static void time_field(struct sk_con_field *fl, int64_t ms)
{
    char buf[SK_CON_FMT_LEN];
    sk_con_field_set(fl, ms < 0 ? "" : sk_con_fmt_time(ms, SK_CON_TIME_FIELD, buf, sizeof(buf)));
}

void sk_con_form_init_edit(struct sk_con_form *f, const struct sk_con_activity *a)
{
    memset(f, 0, sizeof(*f));
    f->activity_id = a->id;
    sk_con_field_set(&f->head[SK_CON_F_NAME], a->name);
    time_field(&f->head[SK_CON_F_PUBLISH_AT], a->publish_at);
    time_field(&f->head[SK_CON_F_STARTS_AT], a->starts_at);
    time_field(&f->head[SK_CON_F_ENDS_AT], a->ends_at);
    for (size_t i = 0; i < a->n_items; i++) {
        const struct sk_con_item *src = &a->items[i];
        struct sk_con_form_item *it = insert_item(f, f->n_items);
        it->id = src->id;
        sk_con_field_set(&it->f[SK_CON_FI_SKU], src->sku);
        sk_con_field_set(&it->f[SK_CON_FI_TITLE], src->title);
        money_field(&it->f[SK_CON_FI_PRICE], src->price_cents);
        money_field(&it->f[SK_CON_FI_SECKILL], src->seckill_price_cents);
        int_field(&it->f[SK_CON_FI_STOCK], src->stock);
        int_field(&it->f[SK_CON_FI_LIMIT], src->per_user_limit);
    }
    if (f->n_items == 0)
        insert_item(f, 0);
}

void sk_con_form_free(struct sk_con_form *f)
{
    free(f->items);
    memset(f, 0, sizeof(*f));
}

size_t sk_con_form_field_count(const struct sk_con_form *f)
{
    return SK_CON_F_HEAD_COUNT + f->n_items * SK_CON_FI_COUNT;
}

long sk_con_form_locate(const struct sk_con_form *f, size_t index, int *col)
{
    (void)f;
    if (index < SK_CON_F_HEAD_COUNT) {
        *col = (int)index;
        return -1;
    }
    *col = (int)((index - SK_CON_F_HEAD_COUNT) % SK_CON_FI_COUNT);
    return (long)((index - SK_CON_F_HEAD_COUNT) / SK_CON_FI_COUNT);
}

size_t sk_con_form_index(size_t item, int col)
{
    return SK_CON_F_HEAD_COUNT + item * SK_CON_FI_COUNT + (size_t)col;
}

struct sk_con_field *sk_con_form_field(struct sk_con_form *f, size_t index)
{
    int col;
    long item = sk_con_form_locate(f, index, &col);
    return item < 0 ? &f->head[col] : &f->items[item].f[col];
}

/* The same for a const form (validation reads only). */
static const struct sk_con_field *field_c(const struct sk_con_form *f, size_t index)
{
    int col;
    long item = sk_con_form_locate(f, index, &col);
    return item < 0 ? &f->head[col] : &f->items[item].f[col];
}

char *sk_con_form_label(const struct sk_con_form *f, size_t index, char *buf, size_t len)
{
    int col;
    long item = sk_con_form_locate(f, index, &col);
    if (item < 0)
        snprintf(buf, len, "%s", head_labels[col]);
    else
        snprintf(buf, len, "Item %ld %s", item + 1, col_labels[col]);
    return buf;
}

void sk_con_form_next(struct sk_con_form *f)
{
    f->focus = (f->focus + 1) % sk_con_form_field_count(f);
}

void sk_con_form_prev(struct sk_con_form *f)
{
    size_t n = sk_con_form_field_count(f);
    f->focus = (f->focus + n - 1) % n;
}

int sk_con_form_add_item(struct sk_con_form *f, char *err, size_t errlen)
{
    int col;
    if (f->n_items >= SK_CON_FORM_MAX_ITEMS) {
        snprintf(err, errlen, "an activity has at most %d items", SK_CON_FORM_MAX_ITEMS);
        return SK_ERR;
    }
    long item = sk_con_form_locate(f, f->focus, &col);
    size_t at = item < 0 ? f->n_items : (size_t)item + 1;
    insert_item(f, at);
    f->focus = sk_con_form_index(at, SK_CON_FI_SKU);
    return SK_OK;
}

int sk_con_form_remove_item(struct sk_con_form *f, char *err, size_t errlen)
{
    int col;
    long item = sk_con_form_locate(f, f->focus, &col);
    if (item < 0) {
        snprintf(err, errlen, "move to an item's row to remove it");
        return SK_ERR;
    }
    if (f->n_items == 1) {
        snprintf(err, errlen, "an activity needs at least one item");
        return SK_ERR;
    }
    memmove(&f->items[item], &f->items[item + 1], (f->n_items - (size_t)item - 1) * sizeof(*f->items));
    f->n_items--;
    if ((size_t)item >= f->n_items)
        item = (long)f->n_items - 1;
    f->focus = sk_con_form_index((size_t)item, col);
    return SK_OK;
}

/* --- validation ---------------------------------------------------------------- */

/* The text without surrounding blanks, into buf. */
static const char *trimmed(const struct sk_con_field *fl, char *buf, size_t len)
{
    const char *s = fl->text;
    size_t n = fl->len;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static int parse_count(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (*s == '\0')
        return SK_ERR;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || v > max)
            return SK_ERR;
        v = v * 10 + (*s - '0');
    }
    if (v < min || v > max)
        return SK_ERR;
    *out = v;
    return SK_OK;
}

#define TIME_HINT "a time such as 2026-11-11 10:00 (UTC), +10m or now"

/* Parse field index alone into *v (ms, cents or a count; -1 for an empty Publish
 * at; 0 for text fields). SK_ERR with "Label: problem". */
static int parse_field(const struct sk_con_form *f, size_t index, int64_t now_ms, int64_t *v, char *err, size_t errlen)
{
    char label[64], t[SK_CON_FIELD_SIZE];
    int col;
    long item = sk_con_form_locate(f, index, &col);
    const struct sk_con_field *fl = field_c(f, index);
    trimmed(fl, t, sizeof(t));
    sk_con_form_label(f, index, label, sizeof(label));
    *v = 0;

    if (item < 0) {
        switch (col) {
        case SK_CON_F_NAME:
            if (t[0] == '\0' || fl->len > NAME_MAX_BYTES)
                goto bad_len;
            return SK_OK;
        case SK_CON_F_PUBLISH_AT:
            if (t[0] == '\0') {
                *v = -1;
                return SK_OK;
            }
            /* fall through */
        default:
            if (t[0] == '\0') {
                snprintf(err, errlen, "%s: required, %s", label, TIME_HINT);
                return SK_ERR;
            }
            if (sk_con_parse_time_input(t, now_ms, v) != SK_OK) {
                snprintf(err, errlen, "%s: \"%.40s\" is not %s", label, t, TIME_HINT);
                return SK_ERR;
            }
            return SK_OK;
        }
    }
    switch (col) {
    case SK_CON_FI_SKU:
        if (t[0] == '\0' || fl->len > SKU_MAX_BYTES)
            goto bad_len;
        return SK_OK;
    case SK_CON_FI_TITLE:
        if (t[0] == '\0' || fl->len > TITLE_MAX_BYTES)
            goto bad_len;
        return SK_OK;
    case SK_CON_FI_PRICE:
    case SK_CON_FI_SECKILL:
        if (sk_con_parse_money(t, v) != SK_OK) {
            snprintf(err, errlen, "%s: \"%.40s\" is not an amount in yuan such as 999 or 999.50 (at most 10^9)", label,
                     t);
            return SK_ERR;
        }
        return SK_OK;
    case SK_CON_FI_STOCK:
        if (parse_count(t, 1, STOCK_MAX, v) != SK_OK) {
            snprintf(err, errlen, "%s: must be a whole number from 1 to %lld", label, STOCK_MAX);
            return SK_ERR;
        }
        return SK_OK;
    default:
        if (parse_count(t, 1, LIMIT_MAX, v) != SK_OK) {
            snprintf(err, errlen, "%s: must be a whole number from 1 to %lld", label, LIMIT_MAX);
            return SK_ERR;
        }
        return SK_OK;
    }
bad_len:
    snprintf(err, errlen, "%s: required, at most %d bytes", label,
             item < 0               ? NAME_MAX_BYTES
             : col == SK_CON_FI_SKU ? SKU_MAX_BYTES
                                    : TITLE_MAX_BYTES);
    return SK_ERR;
}

/* The relations that field index completes, given that it parsed to v. */
static int check_relations(const struct sk_con_form *f, size_t index, int64_t now_ms, const int64_t *v, char *err,
                           size_t errlen)
{
    int64_t other;
    char scratch[SK_CON_MSGLEN], t1[SK_CON_FIELD_SIZE], t2[SK_CON_FIELD_SIZE];
    int col;
    long item = sk_con_form_locate(f, index, &col);

    if (item < 0 && col == SK_CON_F_ENDS_AT &&
        parse_field(f, SK_CON_F_STARTS_AT, now_ms, &other, scratch, sizeof(scratch)) == SK_OK && *v <= other) {
        snprintf(err, errlen, "Ends at: must be after Starts at");
        return SK_ERR;
    }
    if (item < 0 && col == SK_CON_F_PUBLISH_AT && *v >= 0 &&
        parse_field(f, SK_CON_F_STARTS_AT, now_ms, &other, scratch, sizeof(scratch)) == SK_OK && *v > other) {
        snprintf(err, errlen, "Publish at: must not be after Starts at (empty: when you publish)");
        return SK_ERR;
    }
    if (item >= 0 && col == SK_CON_FI_SECKILL &&
        parse_field(f, sk_con_form_index((size_t)item, SK_CON_FI_PRICE), now_ms, &other, scratch, sizeof(scratch)) ==
            SK_OK &&
        *v > other) {
        snprintf(err, errlen, "Item %ld Seckill price: must not be above the price", item + 1);
        return SK_ERR;
    }
    if (item >= 0 && col == SK_CON_FI_SKU) {
        trimmed(&f->items[item].f[SK_CON_FI_SKU], t1, sizeof(t1));
        for (long j = 0; j < item; j++) {
            if (strcmp(t1, trimmed(&f->items[j].f[SK_CON_FI_SKU], t2, sizeof(t2))) == 0) {
                snprintf(err, errlen, "Item %ld SKU: \"%.64s\" is already item %ld's", item + 1, t1, j + 1);
                return SK_ERR;
            }
        }
    }
    return SK_OK;
}

int sk_con_form_check_field(const struct sk_con_form *f, size_t index, int64_t now_ms, char *err, size_t errlen)
{
    int64_t v;
    if (index >= sk_con_form_field_count(f)) {
        snprintf(err, errlen, "no such field");
        return SK_ERR;
    }
    if (parse_field(f, index, now_ms, &v, err, errlen) != SK_OK)
        return SK_ERR;
    return check_relations(f, index, now_ms, &v, err, errlen);
}

static json_t *time_json(int64_t ms)
{
    char buf[SK_TIME_TEXT_LEN];
    return ms < 0 ? json_null() : json_string(sk_time_format(ms, buf));
}

int sk_con_form_build(const struct sk_con_form *f, int64_t now_ms, char **body, size_t *bad, char *err, size_t errlen)
{
    int rc = SK_ERR;
    size_t n = sk_con_form_field_count(f);
    int64_t *v = calloc(n, sizeof(*v));
    json_t *root = NULL, *items;
    char t[SK_CON_FIELD_SIZE];
    char *text;

    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        *bad = 0;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (parse_field(f, i, now_ms, &v[i], err, errlen) != SK_OK ||
            check_relations(f, i, now_ms, &v[i], err, errlen) != SK_OK) {
            *bad = i;
            goto out;
        }
    }
    items = json_array();
    root = json_pack("{s:s%, s:o, s:o, s:o, s:o}", "name", f->head[SK_CON_F_NAME].text, f->head[SK_CON_F_NAME].len,
                     "publish_at", time_json(v[SK_CON_F_PUBLISH_AT]), "starts_at", time_json(v[SK_CON_F_STARTS_AT]),
                     "ends_at", time_json(v[SK_CON_F_ENDS_AT]), "items", items);
    if (root == NULL) {
        snprintf(err, errlen, "cannot build the request");
        *bad = 0;
        goto out;
    }
    for (size_t i = 0; i < f->n_items; i++) {
        const struct sk_con_form_item *it = &f->items[i];
        const int64_t *iv = &v[sk_con_form_index(i, 0)];
        char sku[SK_CON_FIELD_SIZE];
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "sku", trimmed(&it->f[SK_CON_FI_SKU], sku, sizeof(sku)),
                      "title", trimmed(&it->f[SK_CON_FI_TITLE], t, sizeof(t)), "price_cents",
                      (json_int_t)iv[SK_CON_FI_PRICE], "seckill_price_cents", (json_int_t)iv[SK_CON_FI_SECKILL],
                      "stock", (json_int_t)iv[SK_CON_FI_STOCK], "per_user_limit", (json_int_t)iv[SK_CON_FI_LIMIT]);
        if (o == NULL) {
            snprintf(err, errlen, "cannot build the request");
            *bad = sk_con_form_index(i, 0);
            goto out;
        }
        if (it->id != 0)
            json_object_set_new(o, "id", json_integer((json_int_t)it->id));
        json_array_append_new(items, o);
    }
    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL) {
        snprintf(err, errlen, "cannot build the request");
        *bad = 0;
        goto out;
    }
    *body = text;
    rc = SK_OK;
out:
    json_decref(root);
    free(v);
    return rc;
}

int sk_con_form_focus_error(struct sk_con_form *f, const char *daemon_msg)
{
    static const char *const head_keys[SK_CON_F_HEAD_COUNT] = {"name", "publish_at", "starts_at", "ends_at"};
    static const char *const item_keys[SK_CON_FI_COUNT] = {
        "sku", "title", "price_cents", "seckill_price_cents", "stock", "per_user_limit"};
    const char *p = daemon_msg;
    char key[32];
    size_t n;

    if (strncmp(p, "items[", 6) == 0) {
        char *end;
        unsigned long i = strtoul(p + 6, &end, 10);
        if (end == p + 6 || *end != ']' || i >= f->n_items)
            return 0;
        p = end + 1;
        if (*p != '.') { /* "items[1]: …" the item as a whole */
            f->focus = sk_con_form_index(i, SK_CON_FI_SKU);
            return 1;
        }
        p++;
        n = strcspn(p, ":");
        if (n == 0 || n >= sizeof(key))
            return 0;
        memcpy(key, p, n);
        key[n] = '\0';
        for (int c = 0; c < SK_CON_FI_COUNT; c++)
            if (strcmp(key, item_keys[c]) == 0) {
                f->focus = sk_con_form_index(i, c);
                return 1;
            }
        return 0;
    }
    n = strcspn(p, ":");
    if (n == 0 || n >= sizeof(key))
        return 0;
    memcpy(key, p, n);
    key[n] = '\0';
    for (int c = 0; c < SK_CON_F_HEAD_COUNT; c++)
        if (strcmp(key, head_keys[c]) == 0) {
            f->focus = (size_t)c;
            return 1;
        }
    return 0;
}
