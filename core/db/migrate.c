/*
 * Schema migrations: apply the numbered sql/ files that the database has not yet
 * recorded, in order, exactly once even when several daemons start together.
 */
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_WAIT_S 30

/* The bookkeeping table lives here rather than in sql/: it must exist before the
 * first migration can be recorded. */
static const char migrate_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT UNSIGNED NOT NULL,"
    " name VARCHAR(128) NOT NULL,"
    " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " PRIMARY KEY (version)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

/* Named locks are server-wide; scoping the name by database lets daemons (and test
 * suites) that use different databases of one server migrate without waiting for
 * each other, while daemons sharing a database serialise. */
static const char migrate_lock_sql[] = "SELECT GET_LOCK(CONCAT('seckill_migrate.', DATABASE()), 30)";
static const char migrate_unlock_sql[] = "SELECT RELEASE_LOCK(CONCAT('seckill_migrate.', DATABASE()))";

static void mig_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void mig_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Run a query returning one row of one integer column; *is_null when it is NULL. */
static int mig_query_int(struct sk_db *db, const char *sql, long long *out, int *is_null, char *err, size_t errlen)
{
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    int rc = SK_ERR;

    if (mysql_real_query(db->conn, sql, strlen(sql)) != 0) {
        mig_err(err, errlen, "%s (error %u)", mysql_error(db->conn), mysql_errno(db->conn));
        goto out;
    }
    res = mysql_store_result(db->conn);
    if (res == NULL) {
        mig_err(err, errlen, "%s (error %u)", mysql_error(db->conn), mysql_errno(db->conn));
        goto out;
    }
    row = mysql_fetch_row(res);
    if (row == NULL || mysql_num_fields(res) < 1) {
        mig_err(err, errlen, "no row");
        goto out;
    }
    *is_null = row[0] == NULL;
    *out = row[0] != NULL ? strtoll(row[0], NULL, 10) : 0;
    rc = SK_OK;
out:
    if (res != NULL)
        mysql_free_result(res);
    return rc;
}

/* The versions already recorded, as a malloc'd array (caller frees). */
static int mig_applied_versions(struct sk_db *db, long long **out, size_t *n, char *err, size_t errlen)
{
    static const char sql[] = "SELECT version FROM schema_migrations";
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    long long *v = NULL;
    size_t count = 0, rows;
    int rc = SK_ERR;

    if (mysql_real_query(db->conn, sql, strlen(sql)) == 0)
        res = mysql_store_result(db->conn);
    if (res == NULL) {
        mig_err(err, errlen, "cannot read schema_migrations: %s (error %u)", mysql_error(db->conn),
                mysql_errno(db->conn));
        goto out;
    }
    rows = (size_t)mysql_num_rows(res);
    v = calloc(rows > 0 ? rows : 1, sizeof(*v));
    if (v == NULL) {
        mig_err(err, errlen, "out of memory");
        goto out;
    }
    for (row = mysql_fetch_row(res); row != NULL && count < rows; row = mysql_fetch_row(res))
        v[count++] = row[0] != NULL ? strtoll(row[0], NULL, 10) : -1;
    *out = v;
    *n = count;
    v = NULL;
    rc = SK_OK;
out:
    free(v);
    if (res != NULL)
        mysql_free_result(res);
    return rc;
}

static int mig_is_applied(const long long *v, size_t n, int version)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] == version)
            return 1;
    return 0;
}

/* True when the chunk holds nothing but blank lines and line comments: MariaDB
 * rejects such a "statement" ("Query was empty"), and files end with comments. */
static int mig_blank(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
            i++;
        if (i >= len)
            break;
        if (s[i] == '#' || (s[i] == '-' && i + 1 < len && s[i + 1] == '-')) {
            while (i < len && s[i] != '\n')
                i++;
            continue;
        }
        return 0;
    }
    return 1;
}

/* The first line of the statement that is not blank or a comment, for messages. */
static void mig_first_line(const char *s, size_t len, const char **line, int *line_len)
{
    size_t i = 0, start;

    *line = "";
    *line_len = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
            i++;
        start = i;
        while (i < len && s[i] != '\n')
            i++;
        if (start < i && s[start] != '#' && !(s[start] == '-' && start + 1 < i && s[start + 1] == '-')) {
            *line = s + start;
            *line_len = (int)(i - start > 60 ? 60 : i - start);
            return;
        }
    }
}

/* The end of the statement that starts at s: the first ';' followed only by
 * blanks up to a line end (or the end of the text); returns its offset or len. */
static size_t mig_statement_end(const char *s, size_t len)
{
    size_t i, j;

    for (i = 0; i < len; i++) {
        if (s[i] != ';')
            continue;
        j = i + 1;
        while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
            j++;
        if (j >= len || s[j] == '\n')
            return i;
    }
    return len;
}

static int mig_record(struct sk_db *db, const struct sk_migration *m, char *err, size_t errlen)
{
    static const char sql[] = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)";
    MYSQL_STMT *st = NULL;
    MYSQL_BIND b[2];
    int version = m->version;
    unsigned long name_len = (unsigned long)strlen(m->name);
    int rc = SK_ERR;

    st = mysql_stmt_init(db->conn);
    if (st == NULL) {
        mig_err(err, errlen, "out of memory");
        goto out;
    }
    memset(b, 0, sizeof(b));
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = &version;
    b[1].buffer_type = MYSQL_TYPE_STRING;
    b[1].buffer = (void *)m->name;
    b[1].buffer_length = name_len;
    b[1].length = &name_len;
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0 || mysql_stmt_bind_param(st, b) != 0 ||
        mysql_stmt_execute(st) != 0) {
        mig_err(err, errlen, "cannot record it in schema_migrations: %s (error %u)", mysql_stmt_error(st),
                mysql_stmt_errno(st));
        goto out;
    }
    rc = SK_OK;
out:
    if (st != NULL)
        mysql_stmt_close(st);
    return rc;
}

/* Apply one migration: its statements one by one, then its record, in one
 * transaction (DDL commits implicitly in MariaDB, so that only makes data-only
 * migrations atomic; DDL migrations are written to be re-runnable instead). */
static int mig_apply(struct sk_db *db, const struct sk_migration *m, char *err, size_t errlen)
{
    const char *p = m->sql;
    size_t left = strlen(m->sql), end;
    const char *line;
    int line_len, k = 0;
    char why[512];
    int rc = SK_ERR;

    if (mysql_real_query(db->conn, "START TRANSACTION", strlen("START TRANSACTION")) != 0) {
        mig_err(err, errlen, "migration %s: cannot start a transaction: %s (error %u)", m->name,
                mysql_error(db->conn), mysql_errno(db->conn));
        goto out;
    }
    while (left > 0) {
        end = mig_statement_end(p, left);
        if (!mig_blank(p, end)) {
            k++;
            if (mysql_real_query(db->conn, p, end) != 0) {
                mig_first_line(p, end, &line, &line_len);
                mig_err(err, errlen, "migration %s: statement %d (%.*s): %s (error %u)", m->name, k, line_len,
                        line, mysql_error(db->conn), mysql_errno(db->conn));
                goto rollback;
            }
            /* Statements with results (a SELECT in a data migration) must be read. */
            if (mysql_field_count(db->conn) > 0) {
                MYSQL_RES *res = mysql_store_result(db->conn);

                if (res != NULL)
                    mysql_free_result(res);
            }
        }
        if (end >= left)
            break;
        p += end + 1;
        left -= end + 1;
    }
    if (mig_record(db, m, why, sizeof(why)) != SK_OK) {
        mig_err(err, errlen, "migration %s: %s", m->name, why);
        goto rollback;
    }
    if (mysql_commit(db->conn) != 0) {
        mig_err(err, errlen, "migration %s: commit failed: %s (error %u)", m->name, mysql_error(db->conn),
                mysql_errno(db->conn));
        goto rollback;
    }
    rc = SK_OK;
    goto out;
rollback:
    (void)mysql_rollback(db->conn);
out:
    return rc;
}

int sk_db_migrate_list(struct sk_db *db, const struct sk_migration *list, size_t n, int *applied, char *err,
                       size_t errlen)
{
    long long *done = NULL, lock = 0, ignored;
    size_t n_done = 0, i;
    int is_null = 1, locked = 0, count = 0;
    char why[512];
    int rc = SK_ERR;

    if (db == NULL || db->conn == NULL) {
        mig_err(err, errlen, "migrations: not connected to MariaDB");
        goto out;
    }
    if (applied == NULL) {
        mig_err(err, errlen, "migrations: no place for the count");
        goto out;
    }
    if (n > 0 && list == NULL) {
        mig_err(err, errlen, "migrations: no list");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (list[i].name == NULL || list[i].sql == NULL || list[i].version <= 0) {
            mig_err(err, errlen, "migrations: entry %zu has no name, no SQL or a version <= 0", i + 1);
            goto out;
        }
        if (i > 0 && list[i].version <= list[i - 1].version) {
            mig_err(err, errlen, "migrations: %s does not come after %s (versions must strictly increase)",
                    list[i].name, list[i - 1].name);
            goto out;
        }
    }
    if (mig_query_int(db, migrate_lock_sql, &lock, &is_null, why, sizeof(why)) != SK_OK) {
        mig_err(err, errlen, "migrations: cannot take the migration lock: %s", why);
        goto out;
    }
    if (is_null || lock != 1) {
        mig_err(err, errlen, "migrations: another process held the migration lock of database %s for %d s%s",
                db->database, MIGRATE_LOCK_WAIT_S, is_null ? " (or no database is selected)" : "");
        goto out;
    }
    locked = 1;
    if (sk_db_exec(db, migrate_table_sql, why, sizeof(why)) != SK_OK) {
        mig_err(err, errlen, "migrations: cannot create schema_migrations: %s", why);
        goto out;
    }
    if (mig_applied_versions(db, &done, &n_done, why, sizeof(why)) != SK_OK) {
        mig_err(err, errlen, "migrations: %s", why);
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (mig_is_applied(done, n_done, list[i].version))
            continue;
        if (mig_apply(db, &list[i], why, sizeof(why)) != SK_OK) {
            mig_err(err, errlen, "%s; stopped there (%d applied before it in this run, later ones not applied)",
                    why, count);
            goto out;
        }
        count++;
    }
    *applied = count;
    rc = SK_OK;
out:
    /* Releasing is a courtesy: the server drops the lock when the session ends. */
    if (locked)
        (void)mig_query_int(db, migrate_unlock_sql, &ignored, &is_null, why, sizeof(why));
    free(done);
    return rc;
}

int sk_db_migrate(struct sk_db *db, int *applied, char *err, size_t errlen)
{
    return sk_db_migrate_list(db, sk_migrations, sk_migrations_count, applied, err, errlen);
}
