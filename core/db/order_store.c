/* Orders in MariaDB; see order_store.h. */
#include "order_store.h"

#include <errmsg.h>
#include <inttypes.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/order_no.h"

/* Row text: "(order_no, activity, item, user, seq, 'created', amount, reserved, expires)". */
#define ROW_MAX 256

static const char insert_head[] = "INSERT INTO orders (order_no, activity_id, item_id, user_id, seq, status, "
                                  "amount_cents, reserved_at, expires_at) VALUES ";
static const char insert_tail[] = " ON DUPLICATE KEY UPDATE id = id";

static void say(char *err, size_t errlen, const char *fmt, ...) SK_PRINTF(3, 4);
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Errors after which the same batch may well succeed later: the connection, the
 * server going away, lock waits, deadlocks, a read-only or full server. */
static int retryable(unsigned code)
{
    return code >= CR_MIN_ERROR || code == ER_LOCK_WAIT_TIMEOUT || code == ER_LOCK_DEADLOCK ||
           code == ER_SERVER_SHUTDOWN || code == ER_OPTION_PREVENTS_STATEMENT || code == ER_RECORD_FILE_FULL ||
           code == ER_CON_COUNT_ERROR || code == 0;
}

/* Is this a reservation that can be written as SQL text safely? Its order number is
 * checked for shape (so it can be quoted as is) and its numbers for range. */
static const char *invalid_reason(const struct sk_reservation *r)
{
    uint64_t item = 0;
    if (r->order_no == NULL || sk_order_no_parse(r->order_no, strlen(r->order_no), &item) != SK_OK)
        return "order_no is not an order number";
    if (item != r->item_id)
        return "order_no names another item";
    if (r->activity_id == 0 || r->user_id == 0 || r->seq == 0)
        return "activity_id, user_id and seq must be positive";
    if (r->price_cents < 0 || r->reserved_at_ms <= 0 || r->expires_at_ms < r->reserved_at_ms)
        return "price or times out of range";
    return NULL;
}

static int format_row(char *buf, size_t len, const struct sk_reservation *r)
{
    int n = snprintf(buf, len,
                     "('%s',%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu32 ",'created',%" PRId64
                     ",FROM_UNIXTIME(%" PRId64 ".%03d),FROM_UNIXTIME(%" PRId64 ".%03d))",
                     r->order_no, r->activity_id, r->item_id, r->user_id, r->seq, r->price_cents,
                     r->reserved_at_ms / 1000, (int)(r->reserved_at_ms % 1000), r->expires_at_ms / 1000,
                     (int)(r->expires_at_ms % 1000));
    return n > 0 && (size_t)n < len ? n : -1;
}

static int park(struct sk_db *db, const char *source, const char *raw, const char *reason, char *err, size_t errlen)
{
    static const char sql[] = "INSERT INTO parked_records (source, raw, reason) VALUES (?, ?, ?)";
    const char *vals[3] = {source ? source : "", raw ? raw : "", reason ? reason : ""};
    unsigned long lens[3];
    MYSQL_BIND b[3];
    int rc = SK_ERR;
    MYSQL_STMT *st = mysql_stmt_init(db->conn);
    if (st == NULL) {
        say(err, errlen, "MariaDB: out of memory");
        return SK_ERR;
    }
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 3; i++) {
        lens[i] = (unsigned long)strlen(vals[i]);
        if (i != 1 && lens[i] > 512)
            lens[i] = 512; /* source and reason columns: keep the head */
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = (char *)vals[i];
        b[i].buffer_length = lens[i];
        b[i].length = &lens[i];
    }
    if (mysql_stmt_prepare(st, sql, sizeof(sql) - 1) != 0 || mysql_stmt_bind_param(st, b) != 0 ||
        mysql_stmt_execute(st) != 0) {
        say(err, errlen, "MariaDB: cannot park a record: %s", mysql_stmt_error(st));
        goto out;
    }
    rc = SK_OK;
out:
    mysql_stmt_close(st);
    return rc;
}

/* Insert the valid records in one statement; *failed_row gets 1 when MariaDB refused
 * a row for a reason that is not retryable (then nothing was inserted). */
static int insert_all(struct sk_db *db, const struct sk_reservation *recs, const char *const *why, size_t n,
                      size_t *inserted, int *refused, char *err, size_t errlen)
{
    size_t cap = sizeof(insert_head) + sizeof(insert_tail) + n * (ROW_MAX + 1), len = 0, rows = 0;
    char *sql = malloc(cap);
    int rc = SK_ERR;
    *refused = 0;
    *inserted = 0;
    if (sql == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    memcpy(sql, insert_head, sizeof(insert_head) - 1);
    len = sizeof(insert_head) - 1;
    for (size_t i = 0; i < n; i++) {
        if (why[i] != NULL)
            continue;
        if (rows++ > 0)
            sql[len++] = ',';
        int w = format_row(sql + len, cap - len, &recs[i]);
        if (w < 0) {
            say(err, errlen, "order row too long");
            goto out;
        }
        len += (size_t)w;
    }
    if (rows == 0) {
        rc = SK_OK;
        goto out;
    }
    memcpy(sql + len, insert_tail, sizeof(insert_tail));
    len += sizeof(insert_tail) - 1;
    if (mysql_real_query(db->conn, sql, (unsigned long)len) != 0) {
        unsigned code = mysql_errno(db->conn);
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        *refused = !retryable(code);
        goto out;
    }
    *inserted = (size_t)mysql_affected_rows(db->conn);
    rc = SK_OK;
out:
    free(sql);
    return rc;
}

int sk_store_orders_insert(struct sk_db *db, const struct sk_reservation *recs, size_t n,
                           const struct sk_queue_bad_record *bad, size_t n_bad, struct sk_order_batch_result *res,
                           char *err, size_t errlen)
{
    struct sk_order_batch_result r = {0};
    const char **why = calloc(n ? n : 1, sizeof(*why));
    size_t valid = 0, inserted = 0;
    int refused = 0, rc = SK_ERR;
    char row_err[SK_ERRLEN];

    if (why == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        why[i] = invalid_reason(&recs[i]);
        valid += why[i] == NULL;
    }
    if (mysql_query(db->conn, "START TRANSACTION") != 0) {
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        goto out;
    }
    if (insert_all(db, recs, why, n, &inserted, &refused, err, errlen) == SK_OK) {
        r.inserted = inserted;
        r.duplicates = valid - inserted;
    } else if (refused) {
        /* One row poisons the statement: insert them one by one and park the ones
         * MariaDB refuses (the rest of the batch still becomes orders). */
        for (size_t i = 0; i < n; i++) {
            if (why[i] != NULL)
                continue;
            const char *one[1] = {NULL};
            if (insert_all(db, &recs[i], one, 1, &inserted, &refused, row_err, sizeof(row_err)) == SK_OK) {
                r.inserted += inserted;
                r.duplicates += 1 - inserted;
            } else if (refused) {
                char raw[ROW_MAX];
                format_row(raw, sizeof(raw), &recs[i]);
                if (park(db, "order writer", raw, row_err, err, errlen) != SK_OK)
                    goto rollback;
                r.parked++;
            } else {
                say(err, errlen, "%s", row_err);
                goto rollback;
            }
        }
    } else {
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        if (why[i] == NULL)
            continue;
        char raw[ROW_MAX];
        snprintf(raw, sizeof(raw), "order_no=%s user_id=%" PRIu64 " activity_id=%" PRIu64 " item_id=%" PRIu64
                 " seq=%" PRIu32, recs[i].order_no ? recs[i].order_no : "(none)", recs[i].user_id,
                 recs[i].activity_id, recs[i].item_id, recs[i].seq);
        if (park(db, "queue", raw, why[i], err, errlen) != SK_OK)
            goto rollback;
        r.parked++;
    }
    for (size_t i = 0; i < n_bad; i++) {
        if (park(db, bad[i].source, bad[i].raw, bad[i].why, err, errlen) != SK_OK)
            goto rollback;
        r.parked++;
    }
    if (mysql_commit(db->conn) != 0) {
        say(err, errlen, "MariaDB: commit: %s", mysql_error(db->conn));
        goto rollback;
    }
    *res = r;
    rc = SK_OK;
    goto out;
rollback:
    mysql_rollback(db->conn);
out:
    free(why);
    return rc;
}

int sk_store_order_get(struct sk_db *db, const char *order_no, struct sk_order *out, char *err, size_t errlen)
{
    static const char sql[] =
        "SELECT order_no, activity_id, item_id, user_id, seq, status, amount_cents, "
        "CAST(ROUND(UNIX_TIMESTAMP(reserved_at) * 1000) AS SIGNED), "
        "CAST(ROUND(UNIX_TIMESTAMP(expires_at) * 1000) AS SIGNED), "
        "CAST(COALESCE(ROUND(UNIX_TIMESTAMP(paid_at) * 1000), 0) AS SIGNED), "
        "CAST(COALESCE(ROUND(UNIX_TIMESTAMP(closed_at) * 1000), 0) AS SIGNED) "
        "FROM orders WHERE order_no = ?";
    struct sk_order o;
    unsigned long in_len = (unsigned long)strlen(order_no), no_len = 0, st_len = 0;
    unsigned long long aid = 0, iid = 0, uid = 0;
    unsigned long seq = 0;
    long long amount = 0, times[4] = {0};
    MYSQL_BIND in, outb[11];
    int rc = SK_ERR, f;
    MYSQL_STMT *st = mysql_stmt_init(db->conn);
    if (st == NULL) {
        say(err, errlen, "MariaDB: out of memory");
        return SK_ERR;
    }
    memset(&o, 0, sizeof(o));
    memset(&in, 0, sizeof(in));
    in.buffer_type = MYSQL_TYPE_STRING;
    in.buffer = (char *)order_no;
    in.buffer_length = in_len;
    in.length = &in_len;
    memset(outb, 0, sizeof(outb));
    outb[0].buffer_type = MYSQL_TYPE_STRING;
    outb[0].buffer = o.order_no;
    outb[0].buffer_length = sizeof(o.order_no) - 1;
    outb[0].length = &no_len;
    unsigned long long *ids[3] = {&aid, &iid, &uid};
    for (int i = 0; i < 3; i++) {
        outb[1 + i].buffer_type = MYSQL_TYPE_LONGLONG;
        outb[1 + i].buffer = ids[i];
        outb[1 + i].is_unsigned = 1;
    }
    outb[4].buffer_type = MYSQL_TYPE_LONG;
    outb[4].buffer = &seq;
    outb[4].is_unsigned = 1;
    outb[5].buffer_type = MYSQL_TYPE_STRING;
    outb[5].buffer = o.status;
    outb[5].buffer_length = sizeof(o.status) - 1;
    outb[5].length = &st_len;
    outb[6].buffer_type = MYSQL_TYPE_LONGLONG;
    outb[6].buffer = &amount;
    for (int i = 0; i < 4; i++) {
        outb[7 + i].buffer_type = MYSQL_TYPE_LONGLONG;
        outb[7 + i].buffer = &times[i];
    }
    if (mysql_stmt_prepare(st, sql, sizeof(sql) - 1) != 0 || mysql_stmt_bind_param(st, &in) != 0 ||
        mysql_stmt_execute(st) != 0 || mysql_stmt_bind_result(st, outb) != 0) {
        say(err, errlen, "MariaDB: %s", mysql_stmt_error(st));
        goto out;
    }
    f = mysql_stmt_fetch(st);
    if (f == MYSQL_NO_DATA) {
        rc = SK_STORE_NOT_FOUND;
        goto out;
    }
    if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
        say(err, errlen, "MariaDB: %s", mysql_stmt_error(st));
        goto out;
    }
    o.order_no[no_len < sizeof(o.order_no) ? no_len : sizeof(o.order_no) - 1] = '\0';
    o.status[st_len < sizeof(o.status) ? st_len : sizeof(o.status) - 1] = '\0';
    o.activity_id = aid;
    o.item_id = iid;
    o.user_id = uid;
    o.seq = (uint32_t)seq;
    o.amount_cents = amount;
    o.reserved_at_ms = times[0];
    o.expires_at_ms = times[1];
    o.paid_at_ms = times[2];
    o.closed_at_ms = times[3];
    *out = o;
    rc = SK_OK;
out:
    mysql_stmt_close(st);
    return rc;
}

int sk_store_orders_list(struct sk_db *db, const char *status, uint64_t activity_id, size_t limit,
                         struct sk_order *out, size_t *n, char *err, size_t errlen)
{
    char sql[512], where[160] = "1 = 1";
    MYSQL_RES *res;
    MYSQL_ROW row;
    size_t k = 0;
    /* status is one of the known names (checked by the caller); numbers are numbers */
    if (status && activity_id)
        snprintf(where, sizeof(where), "status = '%.15s' AND activity_id = %" PRIu64, status, activity_id);
    else if (status)
        snprintf(where, sizeof(where), "status = '%.15s'", status);
    else if (activity_id)
        snprintf(where, sizeof(where), "activity_id = %" PRIu64, activity_id);
    snprintf(sql, sizeof(sql),
             "SELECT order_no FROM orders WHERE %s ORDER BY id DESC LIMIT %zu", where, limit);
    if (mysql_query(db->conn, sql) != 0 || (res = mysql_store_result(db->conn)) == NULL) {
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        return SK_ERR;
    }
    char (*nos)[48] = calloc(limit ? limit : 1, sizeof(*nos));
    if (nos == NULL) {
        mysql_free_result(res);
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    size_t m = 0;
    while ((row = mysql_fetch_row(res)) != NULL && m < limit)
        snprintf(nos[m++], sizeof(nos[0]), "%s", row[0] ? row[0] : "");
    mysql_free_result(res);
    for (size_t i = 0; i < m; i++) {
        if (sk_store_order_get(db, nos[i], &out[k], err, errlen) == SK_OK)
            k++;
    }
    free(nos);
    *n = k;
    return SK_OK;
}

int sk_store_order_expire_now(struct sk_db *db, const char *order_no, char *err, size_t errlen)
{
    char sql[256];
    struct sk_order o;
    uint64_t item;
    if (sk_order_no_parse(order_no, strlen(order_no), &item) != SK_OK)
        return SK_STORE_NOT_FOUND;
    int rc = sk_store_order_get(db, order_no, &o, err, errlen);
    if (rc != SK_OK)
        return rc;
    snprintf(sql, sizeof(sql),
             "UPDATE orders SET expires_at = LEAST(expires_at, NOW(3)), close_reason = 'admin', updated_at = NOW(3) "
             "WHERE order_no = '%s' AND status IN ('created', 'paying')",
             order_no);
    if (mysql_query(db->conn, sql) != 0) {
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        return SK_ERR;
    }
    return mysql_affected_rows(db->conn) > 0 ? SK_OK : SK_STORE_CONFLICT;
}
