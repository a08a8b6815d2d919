/*
 * Activities and items in MariaDB. Every statement that carries caller data is a
 * prepared statement; the only SQL text built here is made of constant fragments
 * (state names from this file's table).
 *
 * Race-freedom across daemons: every state-dependent write first locks the
 * activity's row (SELECT … FOR UPDATE) inside a transaction, so the state it checks
 * is the state it changes; reads run in one consistent snapshot so that an
 * activity and its items always agree.
 */
#include "activity_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysqld_error.h>

#define ST_MAX_PARAMS 10
#define ST_ALL_STATES ((1u << (SK_ACT_CANCELLED + 1)) - 1)
/* Both prefixes are written literally into the SQL below; keep them in sync. */
#define ST_ACT_COLS "a.id, a.name, a.state, a.publish_at, a.starts_at, a.ends_at, a.created_at, a.updated_at"
#define ST_ITEM_COLS \
    "i.id, i.activity_id, i.sku, i.title, i.price_cents, i.seckill_price_cents, i.stock, i.per_user_limit"

static const char *const st_state_names[] = {
    [SK_ACT_DRAFT] = "draft",         [SK_ACT_SCHEDULED] = "scheduled", [SK_ACT_PUBLISHED] = "published",
    [SK_ACT_RUNNING] = "running",     [SK_ACT_ENDED] = "ended",         [SK_ACT_CANCELLED] = "cancelled",
};
#define ST_N_STATES (sizeof(st_state_names) / sizeof(st_state_names[0]))

const char *sk_activity_state_name(enum sk_activity_state s)
{
    if ((unsigned)s >= ST_N_STATES)
        return "unknown";
    return st_state_names[s];
}

int sk_activity_state_parse(const char *name, enum sk_activity_state *out)
{
    size_t i;

    if (name == NULL || out == NULL)
        return SK_ERR;
    for (i = 0; i < ST_N_STATES; i++) {
        if (strcmp(name, st_state_names[i]) == 0) {
            *out = (enum sk_activity_state)i;
            return SK_OK;
        }
    }
    return SK_ERR;
}

void sk_activity_free(struct sk_activity *a)
{
    if (a == NULL)
        return;
    free(a->items);
    a->items = NULL;
    a->n_items = 0;
}

void sk_activity_list_free(struct sk_activity *list, size_t n)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < n; i++)
        sk_activity_free(&list[i]);
    free(list);
}

/* --- small helpers ------------------------------------------------------------ */

static void st_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void st_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parameters of one prepared statement; the binds point into this struct, so it
 * must stay where it is until the statement has executed. */
struct st_params {
    MYSQL_BIND b[ST_MAX_PARAMS];
    unsigned long len[ST_MAX_PARAMS];
    my_bool null[ST_MAX_PARAMS];
    MYSQL_TIME t[ST_MAX_PARAMS];
    size_t n;
};

static MYSQL_BIND *par_next(struct st_params *p)
{
    MYSQL_BIND *b = &p->b[p->n];

    memset(b, 0, sizeof(*b));
    b->is_null = &p->null[p->n];
    b->length = &p->len[p->n];
    p->null[p->n] = 0;
    p->len[p->n] = 0;
    p->n++;
    return b;
}

static void par_u64(struct st_params *p, const uint64_t *v)
{
    MYSQL_BIND *b = par_next(p);

    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

static void par_i64(struct st_params *p, const int64_t *v)
{
    MYSQL_BIND *b = par_next(p);

    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
}

static void par_u32(struct st_params *p, const uint32_t *v)
{
    MYSQL_BIND *b = par_next(p);

    b->buffer_type = MYSQL_TYPE_LONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

/* s is a NUL-terminated string of at most its field's size (checked by the caller). */
static void par_str(struct st_params *p, const char *s)
{
    MYSQL_BIND *b = par_next(p);

    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)s;
    p->len[p->n - 1] = (unsigned long)strlen(s);
    b->buffer_length = p->len[p->n - 1];
}

/* A DATETIME parameter; NULL when null_if_zero and ms == 0. SK_ERR when out of
 * DATETIME's range (the parameter is then not added). */
static int par_time(struct st_params *p, int64_t ms, int null_if_zero)
{
    MYSQL_TIME t;
    MYSQL_BIND *b;

    if (!(null_if_zero && ms == 0) && sk_db_time_from_ms(ms, &t) != SK_OK)
        return SK_ERR;
    b = par_next(p);
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = &p->t[p->n - 1];
    if (null_if_zero && ms == 0)
        p->null[p->n - 1] = 1;
    else
        p->t[p->n - 1] = t;
    return SK_OK;
}

/* Prepare, bind and execute; the statement on success (caller closes it), NULL
 * with "<what>: <server's message>" in err otherwise. */
static MYSQL_STMT *st_run(struct sk_db *db, const char *what, const char *sql, struct st_params *p, char *err,
                          size_t errlen)
{
    MYSQL_STMT *st = mysql_stmt_init(db->conn);

    if (st == NULL) {
        st_err(err, errlen, "%s: out of memory", what);
        goto out;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
        (p != NULL && p->n > 0 && mysql_stmt_bind_param(st, p->b) != 0) || mysql_stmt_execute(st) != 0) {
        st_err(err, errlen, "%s: %s (MariaDB error %u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
        mysql_stmt_close(st);
        st = NULL;
    }
out:
    return st;
}

/* Run a statement that returns no rows; *affected gets the row count if not NULL. */
static int st_exec(struct sk_db *db, const char *what, const char *sql, struct st_params *p,
                   unsigned long long *affected, char *err, size_t errlen)
{
    MYSQL_STMT *st = st_run(db, what, sql, p, err, errlen);

    if (st == NULL)
        return SK_ERR;
    if (affected != NULL)
        *affected = mysql_stmt_affected_rows(st);
    mysql_stmt_close(st);
    return SK_OK;
}

static int st_begin(struct sk_db *db, const char *how, char *err, size_t errlen)
{
    char why[256];

    if (sk_db_exec(db, how, why, sizeof(why)) != SK_OK) {
        st_err(err, errlen, "cannot start a transaction: %s", why);
        return SK_ERR;
    }
    return SK_OK;
}

static int st_commit(struct sk_db *db, char *err, size_t errlen)
{
    if (mysql_commit(db->conn) != 0) {
        st_err(err, errlen, "commit failed: %s (MariaDB error %u)", mysql_error(db->conn), mysql_errno(db->conn));
        return SK_ERR;
    }
    return SK_OK;
}

/* Undo an open transaction; its own failure (e.g. the connection is gone, which
 * rolls back anyway) must not hide the error that led here. */
static void st_rollback(struct sk_db *db)
{
    (void)mysql_rollback(db->conn);
}

static int st_connected(struct sk_db *db, char *err, size_t errlen)
{
    if (db == NULL || db->conn == NULL) {
        st_err(err, errlen, "not connected to MariaDB");
        return 0;
    }
    return 1;
}

/* A fixed-size text field holds a NUL within its size. */
static int st_terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

/* Checks that protect the store and the struct layout (not business rules, which
 * the admin layer applies): strings fit, times are storable, items are present. */
static int st_check_input(const struct sk_activity *a, char *err, size_t errlen)
{
    MYSQL_TIME t;
    size_t i;

    if (!st_terminated(a->name, sizeof(a->name))) {
        st_err(err, errlen, "activity name is longer than %zu bytes", sizeof(a->name) - 1);
        return SK_ERR;
    }
    if (a->publish_at_ms != 0 && sk_db_time_from_ms(a->publish_at_ms, &t) != SK_OK) {
        st_err(err, errlen, "publish_at is outside the years 1000..9999");
        return SK_ERR;
    }
    if (sk_db_time_from_ms(a->starts_at_ms, &t) != SK_OK || sk_db_time_from_ms(a->ends_at_ms, &t) != SK_OK) {
        st_err(err, errlen, "starts_at or ends_at is outside the years 1000..9999");
        return SK_ERR;
    }
    if (a->n_items > 0 && a->items == NULL) {
        st_err(err, errlen, "activity has %zu items but no item array", a->n_items);
        return SK_ERR;
    }
    for (i = 0; i < a->n_items; i++) {
        if (!st_terminated(a->items[i].sku, sizeof(a->items[i].sku)) ||
            !st_terminated(a->items[i].title, sizeof(a->items[i].title))) {
            st_err(err, errlen, "item %zu: sku (max %zu bytes) or title (max %zu bytes) is too long", i + 1,
                   sizeof(a->items[i].sku) - 1, sizeof(a->items[i].title) - 1);
            return SK_ERR;
        }
    }
    return SK_OK;
}

/* --- reading ------------------------------------------------------------------ */

/* Result columns of one activity row (ST_ACT_COLS). */
struct st_act_row {
    uint64_t id;
    char name[sizeof(((struct sk_activity *)0)->name)];
    char state[16];
    MYSQL_TIME t[5];               /* publish, starts, ends, created, updated */
    unsigned long len[8];
    my_bool null[8];
    my_bool error[8];
    MYSQL_BIND b[8];
};

static void st_act_row_bind(struct st_act_row *r)
{
    int i;

    memset(r, 0, sizeof(*r));
    for (i = 0; i < 8; i++) {
        r->b[i].length = &r->len[i];
        r->b[i].is_null = &r->null[i];
        r->b[i].error = &r->error[i];
    }
    r->b[0].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[0].buffer = &r->id;
    r->b[0].is_unsigned = 1;
    r->b[1].buffer_type = MYSQL_TYPE_STRING;
    r->b[1].buffer = r->name;
    r->b[1].buffer_length = sizeof(r->name);
    r->b[2].buffer_type = MYSQL_TYPE_STRING;
    r->b[2].buffer = r->state;
    r->b[2].buffer_length = sizeof(r->state);
    for (i = 0; i < 5; i++) {
        r->b[3 + i].buffer_type = MYSQL_TYPE_DATETIME;
        r->b[3 + i].buffer = &r->t[i];
    }
}

/* Copy a fetched row into *a (items untouched). */
static int st_act_row_take(const struct st_act_row *r, struct sk_activity *a, char *err, size_t errlen)
{
    char state[sizeof(r->state)];
    enum sk_activity_state s;
    int i;

    /* A string that fills its whole buffer has no room for the NUL: too long for
     * the struct (only possible for rows written around the store). */
    if (r->len[1] >= sizeof(r->name) || r->len[2] >= sizeof(r->state)) {
        st_err(err, errlen, "activity %llu: stored name is longer than %zu bytes", (unsigned long long)r->id,
               sizeof(r->name) - 1);
        return SK_ERR;
    }
    memcpy(state, r->state, r->len[2]);
    state[r->len[2]] = '\0';
    if (sk_activity_state_parse(state, &s) != SK_OK) {
        st_err(err, errlen, "activity %llu: unknown stored state \"%s\"", (unsigned long long)r->id, state);
        return SK_ERR;
    }
    for (i = 4; i < 8; i++) {
        if (r->null[i]) {
            st_err(err, errlen, "activity %llu: a required time is NULL", (unsigned long long)r->id);
            return SK_ERR;
        }
    }
    memset(a, 0, sizeof(*a));
    a->id = r->id;
    memcpy(a->name, r->name, r->len[1]);
    a->name[r->len[1]] = '\0';
    a->state = s;
    a->publish_at_ms = r->null[3] ? 0 : sk_db_time_to_ms(&r->t[0]);
    a->starts_at_ms = sk_db_time_to_ms(&r->t[1]);
    a->ends_at_ms = sk_db_time_to_ms(&r->t[2]);
    a->created_at_ms = sk_db_time_to_ms(&r->t[3]);
    a->updated_at_ms = sk_db_time_to_ms(&r->t[4]);
    return SK_OK;
}

/* Result columns of one item row (ST_ITEM_COLS). */
struct st_item_row {
    struct sk_item it;
    unsigned long len[8];
    my_bool null[8];
    my_bool error[8];
    MYSQL_BIND b[8];
};

static void st_item_row_bind(struct st_item_row *r)
{
    int i;

    memset(r, 0, sizeof(*r));
    for (i = 0; i < 8; i++) {
        r->b[i].length = &r->len[i];
        r->b[i].is_null = &r->null[i];
        r->b[i].error = &r->error[i];
    }
    r->b[0].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[0].buffer = &r->it.id;
    r->b[0].is_unsigned = 1;
    r->b[1].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[1].buffer = &r->it.activity_id;
    r->b[1].is_unsigned = 1;
    r->b[2].buffer_type = MYSQL_TYPE_STRING;
    r->b[2].buffer = r->it.sku;
    r->b[2].buffer_length = sizeof(r->it.sku);
    r->b[3].buffer_type = MYSQL_TYPE_STRING;
    r->b[3].buffer = r->it.title;
    r->b[3].buffer_length = sizeof(r->it.title);
    r->b[4].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[4].buffer = &r->it.price_cents;
    r->b[5].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[5].buffer = &r->it.seckill_price_cents;
    r->b[6].buffer_type = MYSQL_TYPE_LONGLONG;
    r->b[6].buffer = &r->it.stock;
    r->b[7].buffer_type = MYSQL_TYPE_LONG;
    r->b[7].buffer = &r->it.per_user_limit;
    r->b[7].is_unsigned = 1;
}

static int st_item_row_take(struct st_item_row *r, struct sk_item *out, char *err, size_t errlen)
{
    if (r->len[2] >= sizeof(r->it.sku) || r->len[3] >= sizeof(r->it.title)) {
        st_err(err, errlen, "item %llu: stored sku or title is longer than the daemon takes",
               (unsigned long long)r->it.id);
        return SK_ERR;
    }
    r->it.sku[r->len[2]] = '\0';
    r->it.title[r->len[3]] = '\0';
    *out = r->it;
    return SK_OK;
}

/* Fetch every row of an executed statement: bind, store, and call take(i) per row
 * into a malloc'd array of `size`-byte elements. */
static int st_fetch_all(MYSQL_STMT *st, const char *what, MYSQL_BIND *binds, size_t size, void **out, size_t *n,
                        int (*take)(void *row_ctx, void *dst, char *err, size_t errlen), void *row_ctx,
                        char *err, size_t errlen)
{
    unsigned char *arr = NULL;
    size_t rows, count = 0;
    int frc, rc = SK_ERR;

    if (mysql_stmt_bind_result(st, binds) != 0 || mysql_stmt_store_result(st) != 0) {
        st_err(err, errlen, "%s: %s (MariaDB error %u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
        goto out;
    }
    rows = (size_t)mysql_stmt_num_rows(st);
    arr = calloc(rows > 0 ? rows : 1, size);
    if (arr == NULL) {
        st_err(err, errlen, "%s: out of memory for %zu rows", what, rows);
        goto out;
    }
    for (frc = mysql_stmt_fetch(st); frc != MYSQL_NO_DATA; frc = mysql_stmt_fetch(st)) {
        /* Truncation is detected by take() from the lengths; anything else is fatal. */
        if (frc != 0 && frc != MYSQL_DATA_TRUNCATED) {
            st_err(err, errlen, "%s: %s (MariaDB error %u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
            goto out;
        }
        if (count >= rows) {
            st_err(err, errlen, "%s: more rows than announced", what);
            goto out;
        }
        if (take(row_ctx, arr + count * size, err, errlen) != SK_OK)
            goto out;
        count++;
    }
    *out = arr;
    *n = count;
    arr = NULL;
    rc = SK_OK;
out:
    free(arr);
    return rc;
}

static int st_take_act(void *ctx, void *dst, char *err, size_t errlen)
{
    return st_act_row_take(ctx, dst, err, errlen);
}

static int st_take_item(void *ctx, void *dst, char *err, size_t errlen)
{
    return st_item_row_take(ctx, dst, err, errlen);
}

/* "a.state IN ('draft','running')" for the wanted states, from constant names only. */
static void st_state_cond(unsigned mask, char *buf, size_t len)
{
    size_t i, used;

    used = (size_t)snprintf(buf, len, "a.state IN (");
    for (i = 0; i < ST_N_STATES; i++) {
        if ((mask & (1u << i)) == 0)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s'%s'", buf[used - 1] == '(' ? "" : ",",
                                 st_state_names[i]);
    }
    snprintf(buf + used, len - used, ")");
}

/* Load the activities with id *id (when id is not NULL) or in the states of mask
 * (0: all), newest first, each with its items, from one consistent snapshot: two
 * queries however many activities there are. */
static int st_load(struct sk_db *db, const uint64_t *id, unsigned mask, int64_t ended_since_ms,
                   struct sk_activity **out, size_t *n, char *err, size_t errlen)
{
    char cond[512], sql[1536];
    struct st_params p;
    struct st_act_row ar;
    struct st_item_row ir;
    struct sk_activity *acts = NULL;
    struct sk_item *items = NULL;
    size_t n_acts = 0, n_items = 0, i, j = 0, start;
    MYSQL_STMT *st = NULL;
    int in_tx = 0, rc = SK_ERR;

    memset(&p, 0, sizeof(p));
    char base[256];
    if (id != NULL) {
        snprintf(base, sizeof(base), "a.id = ?");
        par_u64(&p, id);
    } else if ((mask & ST_ALL_STATES) == ST_ALL_STATES || mask == 0) {
        snprintf(base, sizeof(base), "1 = 1");
    } else {
        st_state_cond(mask & ST_ALL_STATES, base, sizeof(base));
    }
    if (id == NULL && ended_since_ms > 0)
        /* and the activities that ended since then (numbers only: no injection) */
        snprintf(cond, sizeof(cond), "((%s) OR (a.state = 'ended' AND a.ends_at >= FROM_UNIXTIME(%lld.%03d)))", base,
                 (long long)(ended_since_ms / 1000), (int)(ended_since_ms % 1000));
    else
        snprintf(cond, sizeof(cond), "%s", base);
    if (st_begin(db, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;

    snprintf(sql, sizeof(sql), "SELECT " ST_ACT_COLS " FROM activities a WHERE %s ORDER BY a.id DESC", cond);
    st = st_run(db, "reading activities", sql, &p, err, errlen);
    if (st == NULL)
        goto out;
    st_act_row_bind(&ar);
    if (st_fetch_all(st, "reading activities", ar.b, sizeof(*acts), (void **)&acts, &n_acts, st_take_act, &ar, err,
                     errlen) != SK_OK)
        goto out;
    mysql_stmt_close(st);
    st = NULL;

    if (n_acts > 0) {
        snprintf(sql, sizeof(sql),
                 "SELECT " ST_ITEM_COLS " FROM items i JOIN activities a ON a.id = i.activity_id WHERE %s "
                 "ORDER BY i.activity_id DESC, i.id",
                 cond);
        st = st_run(db, "reading items", sql, &p, err, errlen);
        if (st == NULL)
            goto out;
        st_item_row_bind(&ir);
        if (st_fetch_all(st, "reading items", ir.b, sizeof(*items), (void **)&items, &n_items, st_take_item, &ir,
                         err, errlen) != SK_OK)
            goto out;
        mysql_stmt_close(st);
        st = NULL;
    }
    if (st_commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;

    /* Both lists are ordered by activity id descending: hand out the runs. */
    for (i = 0; i < n_acts; i++) {
        while (j < n_items && items[j].activity_id > acts[i].id)
            j++;
        start = j;
        while (j < n_items && items[j].activity_id == acts[i].id)
            j++;
        if (j == start)
            continue;
        acts[i].items = malloc((j - start) * sizeof(*items));
        if (acts[i].items == NULL) {
            st_err(err, errlen, "reading items: out of memory");
            goto out;
        }
        memcpy(acts[i].items, items + start, (j - start) * sizeof(*items));
        acts[i].n_items = j - start;
    }
    *out = acts;
    *n = n_acts;
    acts = NULL;
    n_acts = 0;
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    if (in_tx)
        st_rollback(db);
    sk_activity_list_free(acts, n_acts);
    free(items);
    return rc;
}

/* --- writing ------------------------------------------------------------------ */

/* Inside a transaction: lock the activity's row and read its state. */
static int st_lock_state(struct sk_db *db, uint64_t id, enum sk_activity_state *state, char *err, size_t errlen)
{
    static const char sql[] = "SELECT state FROM activities WHERE id = ? FOR UPDATE";
    struct st_params p;
    MYSQL_STMT *st;
    MYSQL_BIND b;
    char name[16];
    unsigned long len = 0;
    my_bool is_null = 0;
    int frc, rc = SK_ERR;

    memset(&p, 0, sizeof(p));
    par_u64(&p, &id);
    st = st_run(db, "locking the activity", sql, &p, err, errlen);
    if (st == NULL)
        goto out;
    memset(&b, 0, sizeof(b));
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = name;
    b.buffer_length = sizeof(name);
    b.length = &len;
    b.is_null = &is_null;
    if (mysql_stmt_bind_result(st, &b) != 0 || mysql_stmt_store_result(st) != 0) {
        st_err(err, errlen, "locking the activity: %s (MariaDB error %u)", mysql_stmt_error(st),
               mysql_stmt_errno(st));
        goto out;
    }
    frc = mysql_stmt_fetch(st);
    if (frc == MYSQL_NO_DATA) {
        st_err(err, errlen, "activity %llu does not exist", (unsigned long long)id);
        rc = SK_STORE_NOT_FOUND;
        goto out;
    }
    if (frc != 0 || is_null || len >= sizeof(name)) {
        st_err(err, errlen, "locking the activity: cannot read its state: %s", mysql_stmt_error(st));
        goto out;
    }
    name[len] = '\0';
    if (sk_activity_state_parse(name, state) != SK_OK) {
        st_err(err, errlen, "activity %llu: unknown stored state \"%s\"", (unsigned long long)id, name);
        goto out;
    }
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    return rc;
}

/* Insert the items of activity act_id; with keep_ids an item's non-zero id is
 * inserted as is (the update path re-inserts existing items under their ids).
 * The new ids go to ids[]. */
static int st_insert_items(struct sk_db *db, uint64_t act_id, const struct sk_item *items, size_t n, int keep_ids,
                           uint64_t *ids, char *err, size_t errlen)
{
    static const char sql[] = "INSERT INTO items (id, activity_id, sku, title, price_cents, seckill_price_cents, "
                              "stock, per_user_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    struct st_params p;
    struct sk_item cur;
    MYSQL_STMT *st = NULL;
    size_t i;
    int rc = SK_ERR;

    if (n == 0)
        return SK_OK;
    memset(&p, 0, sizeof(p));
    memset(&cur, 0, sizeof(cur));
    par_u64(&p, &cur.id);
    par_u64(&p, &act_id);
    par_str(&p, cur.sku);
    par_str(&p, cur.title);
    par_i64(&p, &cur.price_cents);
    par_i64(&p, &cur.seckill_price_cents);
    par_i64(&p, &cur.stock);
    par_u32(&p, &cur.per_user_limit);
    st = mysql_stmt_init(db->conn);
    if (st == NULL) {
        st_err(err, errlen, "inserting items: out of memory");
        goto out;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
        st_err(err, errlen, "inserting items: %s (MariaDB error %u)", mysql_stmt_error(st), mysql_stmt_errno(st));
        goto out;
    }
    /* One prepared statement for all items: the binds point at `cur`, refilled
     * before each execution. */
    for (i = 0; i < n; i++) {
        cur = items[i];
        if (!keep_ids)
            cur.id = 0;
        p.null[0] = cur.id == 0;          /* NULL: AUTO_INCREMENT picks the id */
        p.len[2] = (unsigned long)strlen(cur.sku);
        p.b[2].buffer_length = p.len[2];
        p.len[3] = (unsigned long)strlen(cur.title);
        p.b[3].buffer_length = p.len[3];
        if (mysql_stmt_bind_param(st, p.b) != 0 || mysql_stmt_execute(st) != 0) {
            if (mysql_stmt_errno(st) == ER_DUP_ENTRY && strstr(mysql_stmt_error(st), "uq_items_activity_sku") != NULL)
                st_err(err, errlen, "item %zu: sku \"%s\" appears more than once in the activity", i + 1, cur.sku);
            else
                st_err(err, errlen, "item %zu (sku \"%s\"): %s (MariaDB error %u)", i + 1, cur.sku,
                       mysql_stmt_error(st), mysql_stmt_errno(st));
            goto out;
        }
        ids[i] = cur.id != 0 ? cur.id : (uint64_t)mysql_stmt_insert_id(st);
    }
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    return rc;
}

/* The database's clock, so that created/updated times agree across daemons. */
static int st_now(struct sk_db *db, int64_t *now_ms, char *err, size_t errlen)
{
    MYSQL_STMT *st;
    MYSQL_TIME t;
    MYSQL_BIND b;
    my_bool is_null = 0;
    int rc = SK_ERR;

    st = st_run(db, "reading the clock", "SELECT NOW(3)", NULL, err, errlen);
    if (st == NULL)
        goto out;
    memset(&b, 0, sizeof(b));
    memset(&t, 0, sizeof(t));
    b.buffer_type = MYSQL_TYPE_DATETIME;
    b.buffer = &t;
    b.is_null = &is_null;
    if (mysql_stmt_bind_result(st, &b) != 0 || mysql_stmt_store_result(st) != 0 || mysql_stmt_fetch(st) != 0 ||
        is_null) {
        st_err(err, errlen, "reading the clock: %s", mysql_stmt_error(st));
        goto out;
    }
    *now_ms = sk_db_time_to_ms(&t);
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    return rc;
}

int sk_store_activity_create(struct sk_db *db, struct sk_activity *a, char *err, size_t errlen)
{
    static const char sql[] = "INSERT INTO activities (name, state, publish_at, starts_at, ends_at, created_at, "
                              "updated_at) VALUES (?, 'draft', ?, ?, ?, ?, ?)";
    struct st_params p;
    uint64_t *ids = NULL, act_id;
    int64_t now_ms = 0;
    MYSQL_STMT *st = NULL;
    size_t i;
    int in_tx = 0, rc = SK_ERR;

    if (!st_connected(db, err, errlen))
        goto out;
    if (a == NULL) {
        st_err(err, errlen, "no activity");
        goto out;
    }
    if (st_check_input(a, err, errlen) != SK_OK)
        goto out;
    ids = calloc(a->n_items > 0 ? a->n_items : 1, sizeof(*ids));
    if (ids == NULL) {
        st_err(err, errlen, "out of memory for %zu items", a->n_items);
        goto out;
    }
    if (st_begin(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    if (st_now(db, &now_ms, err, errlen) != SK_OK)
        goto out;
    memset(&p, 0, sizeof(p));
    par_str(&p, a->name);
    /* Ranges were checked by st_check_input; now_ms comes from the server. */
    if (par_time(&p, a->publish_at_ms, 1) != SK_OK || par_time(&p, a->starts_at_ms, 0) != SK_OK ||
        par_time(&p, a->ends_at_ms, 0) != SK_OK || par_time(&p, now_ms, 0) != SK_OK ||
        par_time(&p, now_ms, 0) != SK_OK) {
        st_err(err, errlen, "a time is outside the years 1000..9999");
        goto out;
    }
    st = st_run(db, "inserting the activity", sql, &p, err, errlen);
    if (st == NULL)
        goto out;
    act_id = (uint64_t)mysql_stmt_insert_id(st);
    mysql_stmt_close(st);
    st = NULL;
    if (st_insert_items(db, act_id, a->items, a->n_items, 0, ids, err, errlen) != SK_OK)
        goto out;
    if (st_commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;

    a->id = act_id;
    a->state = SK_ACT_DRAFT;
    a->created_at_ms = now_ms;
    a->updated_at_ms = now_ms;
    for (i = 0; i < a->n_items; i++) {
        a->items[i].id = ids[i];
        a->items[i].activity_id = act_id;
    }
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    if (in_tx)
        st_rollback(db);
    free(ids);
    return rc;
}

int sk_store_activity_get(struct sk_db *db, uint64_t id, struct sk_activity *out, char *err, size_t errlen)
{
    struct sk_activity *list = NULL;
    size_t n = 0;
    int rc = SK_ERR;

    if (!st_connected(db, err, errlen))
        goto out;
    if (out == NULL) {
        st_err(err, errlen, "no place for the activity");
        goto out;
    }
    if (st_load(db, &id, 0, 0, &list, &n, err, errlen) != SK_OK)
        goto out;
    if (n == 0) {
        st_err(err, errlen, "activity %llu does not exist", (unsigned long long)id);
        rc = SK_STORE_NOT_FOUND;
        goto out;
    }
    *out = list[0];
    list[0].items = NULL;
    list[0].n_items = 0;
    rc = SK_OK;
out:
    sk_activity_list_free(list, n);
    return rc;
}

int sk_store_activity_list(struct sk_db *db, unsigned state_mask, struct sk_activity **out, size_t *n, char *err,
                           size_t errlen)
{
    int rc = SK_ERR;

    if (!st_connected(db, err, errlen))
        goto out;
    if (out == NULL || n == NULL) {
        st_err(err, errlen, "no place for the list");
        goto out;
    }
    /* A mask of unknown states only selects nothing. */
    if (state_mask != 0 && (state_mask & ST_ALL_STATES) == 0) {
        *out = NULL;
        *n = 0;
        rc = SK_OK;
        goto out;
    }
    rc = st_load(db, NULL, state_mask, 0, out, n, err, errlen);
out:
    return rc;
}

int sk_store_activity_list_live(struct sk_db *db, unsigned state_mask, int64_t ended_since_ms,
                                struct sk_activity **out, size_t *n, char *err, size_t errlen)
{
    if (!st_connected(db, err, errlen))
        return SK_ERR;
    if (out == NULL || n == NULL || (state_mask & ST_ALL_STATES) == 0) {
        st_err(err, errlen, "no place for the list, or no state asked for");
        return SK_ERR;
    }
    return st_load(db, NULL, state_mask, ended_since_ms, out, n, err, errlen);
}

static int st_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

/* The ids of the activity's items, sorted, locked for the transaction. */
static int st_item_ids(struct sk_db *db, uint64_t act_id, uint64_t **out, size_t *n, char *err, size_t errlen)
{
    static const char sql[] = "SELECT id FROM items WHERE activity_id = ? ORDER BY id FOR UPDATE";
    struct st_params p;
    MYSQL_STMT *st;
    MYSQL_BIND b;
    uint64_t id = 0, *ids = NULL;
    size_t rows, count = 0;
    int frc, rc = SK_ERR;

    memset(&p, 0, sizeof(p));
    par_u64(&p, &act_id);
    st = st_run(db, "reading item ids", sql, &p, err, errlen);
    if (st == NULL)
        goto out;
    memset(&b, 0, sizeof(b));
    b.buffer_type = MYSQL_TYPE_LONGLONG;
    b.buffer = &id;
    b.is_unsigned = 1;
    if (mysql_stmt_bind_result(st, &b) != 0 || mysql_stmt_store_result(st) != 0) {
        st_err(err, errlen, "reading item ids: %s", mysql_stmt_error(st));
        goto out;
    }
    rows = (size_t)mysql_stmt_num_rows(st);
    ids = calloc(rows > 0 ? rows : 1, sizeof(*ids));
    if (ids == NULL) {
        st_err(err, errlen, "reading item ids: out of memory");
        goto out;
    }
    for (frc = mysql_stmt_fetch(st); frc == 0 && count < rows; frc = mysql_stmt_fetch(st))
        ids[count++] = id;
    if (frc != MYSQL_NO_DATA && frc != 0) {
        st_err(err, errlen, "reading item ids: %s", mysql_stmt_error(st));
        goto out;
    }
    *out = ids;
    *n = count;
    ids = NULL;
    rc = SK_OK;
out:
    free(ids);
    if (st != NULL)
        mysql_stmt_close(st);
    return rc;
}

/* Every non-zero item id of the input names an item of the activity, once. */
static int st_check_item_ids(const struct sk_activity *a, const uint64_t *have, size_t n_have, char *err,
                             size_t errlen)
{
    uint64_t *given = NULL;
    size_t i, n = 0;
    int rc = SK_ERR;

    given = calloc(a->n_items > 0 ? a->n_items : 1, sizeof(*given));
    if (given == NULL) {
        st_err(err, errlen, "out of memory");
        goto out;
    }
    for (i = 0; i < a->n_items; i++) {
        if (a->items[i].id == 0)
            continue;
        if (bsearch(&a->items[i].id, have, n_have, sizeof(*have), st_cmp_u64) == NULL) {
            st_err(err, errlen, "item %zu: id %llu is not an item of activity %llu", i + 1,
                   (unsigned long long)a->items[i].id, (unsigned long long)a->id);
            goto out;
        }
        given[n++] = a->items[i].id;
    }
    qsort(given, n, sizeof(*given), st_cmp_u64);
    for (i = 1; i < n; i++) {
        if (given[i] == given[i - 1]) {
            st_err(err, errlen, "item id %llu appears more than once", (unsigned long long)given[i]);
            goto out;
        }
    }
    rc = SK_OK;
out:
    free(given);
    return rc;
}

static int st_editable(enum sk_activity_state s)
{
    return s == SK_ACT_DRAFT || s == SK_ACT_SCHEDULED;
}

int sk_store_activity_update(struct sk_db *db, struct sk_activity *a, char *err, size_t errlen)
{
    static const char upd_sql[] = "UPDATE activities SET name = ?, publish_at = ?, starts_at = ?, ends_at = ?, "
                                  "updated_at = NOW(3) WHERE id = ?";
    static const char del_sql[] = "DELETE FROM items WHERE activity_id = ?";
    struct st_params p;
    struct sk_activity fresh;
    enum sk_activity_state state;
    uint64_t *have = NULL, *ids = NULL, act_id = 0;
    size_t n_have = 0;
    int in_tx = 0, lrc, rc = SK_ERR;

    memset(&fresh, 0, sizeof(fresh));
    if (!st_connected(db, err, errlen))
        goto out;
    if (a == NULL) {
        st_err(err, errlen, "no activity");
        goto out;
    }
    act_id = a->id;
    if (st_check_input(a, err, errlen) != SK_OK)
        goto out;
    ids = calloc(a->n_items > 0 ? a->n_items : 1, sizeof(*ids));
    if (ids == NULL) {
        st_err(err, errlen, "out of memory for %zu items", a->n_items);
        goto out;
    }
    if (st_begin(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    lrc = st_lock_state(db, act_id, &state, err, errlen);
    if (lrc != SK_OK) {
        rc = lrc;
        goto out;
    }
    if (!st_editable(state)) {
        st_err(err, errlen, "activity %llu is %s: only draft or scheduled activities can be changed",
               (unsigned long long)act_id, sk_activity_state_name(state));
        rc = SK_STORE_CONFLICT;
        goto out;
    }
    if (st_item_ids(db, act_id, &have, &n_have, err, errlen) != SK_OK ||
        st_check_item_ids(a, have, n_have, err, errlen) != SK_OK)
        goto out;
    memset(&p, 0, sizeof(p));
    par_str(&p, a->name);
    if (par_time(&p, a->publish_at_ms, 1) != SK_OK || par_time(&p, a->starts_at_ms, 0) != SK_OK ||
        par_time(&p, a->ends_at_ms, 0) != SK_OK) {
        st_err(err, errlen, "a time is outside the years 1000..9999");
        goto out;
    }
    par_u64(&p, &act_id);
    if (st_exec(db, "updating the activity", upd_sql, &p, NULL, err, errlen) != SK_OK)
        goto out;
    /* Replace the item set: delete all, re-insert kept items under their ids. This
     * also makes swaps of skus between items work, which row-by-row updates would
     * trip over the unique key for. No orders can reference items of a draft or
     * scheduled activity (nothing is on sale yet). */
    memset(&p, 0, sizeof(p));
    par_u64(&p, &act_id);
    if (st_exec(db, "replacing the items", del_sql, &p, NULL, err, errlen) != SK_OK)
        goto out;
    if (st_insert_items(db, act_id, a->items, a->n_items, 1, ids, err, errlen) != SK_OK)
        goto out;
    if (st_commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    lrc = sk_store_activity_get(db, act_id, &fresh, err, errlen);
    if (lrc != SK_OK) {
        /* Committed, but the caller's copy could not be refreshed: say both. */
        if (err != NULL && errlen > 0) {
            char why[256];

            snprintf(why, sizeof(why), "%s", err);
            st_err(err, errlen, "activity %llu was updated, but reading it back failed: %s",
                   (unsigned long long)act_id, why);
        }
        goto out;
    }
    sk_activity_free(a);
    *a = fresh;
    memset(&fresh, 0, sizeof(fresh));
    rc = SK_OK;
out:
    if (in_tx)
        st_rollback(db);
    free(have);
    free(ids);
    return rc;
}

int sk_store_activity_delete(struct sk_db *db, uint64_t id, char *err, size_t errlen)
{
    static const char del_items_sql[] = "DELETE FROM items WHERE activity_id = ?";
    static const char del_act_sql[] = "DELETE FROM activities WHERE id = ?";
    struct st_params p;
    enum sk_activity_state state;
    int in_tx = 0, lrc, rc = SK_ERR;

    if (!st_connected(db, err, errlen))
        goto out;
    if (st_begin(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    lrc = st_lock_state(db, id, &state, err, errlen);
    if (lrc != SK_OK) {
        rc = lrc;
        goto out;
    }
    if (!st_editable(state)) {
        st_err(err, errlen, "activity %llu is %s: only draft or scheduled activities can be deleted",
               (unsigned long long)id, sk_activity_state_name(state));
        rc = SK_STORE_CONFLICT;
        goto out;
    }
    memset(&p, 0, sizeof(p));
    par_u64(&p, &id);
    if (st_exec(db, "deleting the items", del_items_sql, &p, NULL, err, errlen) != SK_OK ||
        st_exec(db, "deleting the activity", del_act_sql, &p, NULL, err, errlen) != SK_OK)
        goto out;
    if (st_commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    rc = SK_OK;
out:
    if (in_tx)
        st_rollback(db);
    return rc;
}

int sk_store_activity_transition(struct sk_db *db, uint64_t id, unsigned from_mask, enum sk_activity_state to,
                                 int64_t publish_at_ms, char *err, size_t errlen)
{
    static const char sql_keep[] = "UPDATE activities SET state = ?, updated_at = NOW(3) WHERE id = ?";
    static const char sql_publish[] =
        "UPDATE activities SET state = ?, publish_at = ?, updated_at = NOW(3) WHERE id = ?";
    struct st_params p;
    enum sk_activity_state state;
    const char *to_name;
    int in_tx = 0, lrc, rc = SK_ERR;

    if (!st_connected(db, err, errlen))
        goto out;
    if ((unsigned)to >= ST_N_STATES) {
        st_err(err, errlen, "unknown target state %d", (int)to);
        goto out;
    }
    to_name = st_state_names[to];
    memset(&p, 0, sizeof(p));
    par_str(&p, to_name);
    if (publish_at_ms >= 0 && par_time(&p, publish_at_ms, 1) != SK_OK) {
        st_err(err, errlen, "publish_at is outside the years 1000..9999");
        goto out;
    }
    par_u64(&p, &id);
    if (st_begin(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    lrc = st_lock_state(db, id, &state, err, errlen);
    if (lrc != SK_OK) {
        rc = lrc;
        goto out;
    }
    if ((from_mask & (1u << state)) == 0) {
        st_err(err, errlen, "activity %llu is %s: it cannot become %s", (unsigned long long)id,
               sk_activity_state_name(state), to_name);
        rc = SK_STORE_CONFLICT;
        goto out;
    }
    if (st_exec(db, "changing the state", publish_at_ms >= 0 ? sql_publish : sql_keep, &p, NULL, err, errlen) !=
        SK_OK)
        goto out;
    if (st_commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    rc = SK_OK;
out:
    if (in_tx)
        st_rollback(db);
    return rc;
}
