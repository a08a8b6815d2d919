/*
 * MariaDB connections: open with the session settings the schema relies on, ping
 * with an explicit reconnect, run plain statements, and convert times.
 */
#include "db.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <errmsg.h>

#define SK_DB_TIMEOUT_S 5

/* mysql_init() initialises the library on first use, which is not thread-safe; the
 * daemon opens connections from several threads, so do it once up front. */
static pthread_once_t db_lib_once = PTHREAD_ONCE_INIT;
static int db_lib_rc;

static void db_lib_init(void)
{
    db_lib_rc = mysql_library_init(0, NULL, NULL);
}

static void db_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void db_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy src into a fixed field; 0 when it does not fit. */
static int db_copy(char *dst, size_t dstlen, const char *src)
{
    size_t len = src != NULL ? strlen(src) : 0;

    if (len >= dstlen)
        return 0;
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
    return 1;
}

/* The session settings every statement of the daemon assumes: instants are UTC
 * (NOW(3) and DATETIME values agree with sk_db_time_*), and bad values fail rather
 * than being truncated or zeroed. */
static const char *const db_session_sql[] = {
    "SET time_zone = '+00:00'",
    "SET sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "NO_ENGINE_SUBSTITUTION'",
};

/* Connect with the parameters stored in *db into a new handle; *out on success. */
static int db_connect(const struct sk_db *db, MYSQL **out, char *err, size_t errlen)
{
    MYSQL *conn = NULL;
    unsigned int timeout = SK_DB_TIMEOUT_S;
    my_bool reconnect = 0;
    size_t i;
    int rc = SK_ERR;

    if (pthread_once(&db_lib_once, db_lib_init) != 0 || db_lib_rc != 0) {
        db_err(err, errlen, "cannot initialise the MariaDB client library");
        goto out;
    }
    conn = mysql_init(NULL);
    if (conn == NULL) {
        db_err(err, errlen, "cannot initialise a MariaDB connection: out of memory");
        goto out;
    }
    if (mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) != 0 ||
        mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &timeout) != 0 ||
        mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &timeout) != 0 ||
        mysql_options(conn, MYSQL_OPT_RECONNECT, &reconnect) != 0 ||
        mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0) {
        db_err(err, errlen, "cannot set MariaDB connection options: %s", mysql_error(conn));
        goto out;
    }
    if (mysql_real_connect(conn, db->host, db->user, db->password, db->database[0] != '\0' ? db->database : NULL,
                           db->port, NULL, 0) == NULL) {
        db_err(err, errlen, "cannot connect to MariaDB at %s:%u as %s%s%s: %s", db->host, db->port, db->user,
               db->database[0] != '\0' ? ", database " : "", db->database, mysql_error(conn));
        goto out;
    }
    for (i = 0; i < sizeof(db_session_sql) / sizeof(db_session_sql[0]); i++) {
        if (mysql_real_query(conn, db_session_sql[i], strlen(db_session_sql[i])) != 0) {
            db_err(err, errlen, "MariaDB at %s:%u: cannot set up the session (%s): %s", db->host, db->port,
                   db_session_sql[i], mysql_error(conn));
            goto out;
        }
    }
    *out = conn;
    conn = NULL;
    rc = SK_OK;
out:
    if (conn != NULL)
        mysql_close(conn);
    return rc;
}

int sk_db_open(struct sk_db *db, const char *host, unsigned port, const char *user, const char *password,
               const char *database, char *err, size_t errlen)
{
    struct sk_db tmp;
    int rc = SK_ERR;

    memset(&tmp, 0, sizeof(tmp));
    if (db == NULL || host == NULL || host[0] == '\0' || user == NULL) {
        db_err(err, errlen, "MariaDB: host and user are required");
        goto out;
    }
    if (port == 0 || port > 65535) {
        db_err(err, errlen, "MariaDB: port %u is not a TCP port (1..65535)", port);
        goto out;
    }
    if (!db_copy(tmp.host, sizeof(tmp.host), host) || !db_copy(tmp.user, sizeof(tmp.user), user) ||
        !db_copy(tmp.password, sizeof(tmp.password), password) ||
        !db_copy(tmp.database, sizeof(tmp.database), database)) {
        db_err(err, errlen, "MariaDB: host (max %zu), user (max %zu), password (max %zu) or database (max %zu bytes) "
               "is too long", sizeof(tmp.host) - 1, sizeof(tmp.user) - 1, sizeof(tmp.password) - 1,
               sizeof(tmp.database) - 1);
        goto out;
    }
    tmp.port = port;
    if (db_connect(&tmp, &tmp.conn, err, errlen) != SK_OK)
        goto out;
    *db = tmp;
    rc = SK_OK;
out:
    memset(tmp.password, 0, sizeof(tmp.password));
    return rc;
}

int sk_db_open_config(struct sk_db *db, const struct sk_config *cfg, char *err, size_t errlen)
{
    if (cfg == NULL) {
        db_err(err, errlen, "MariaDB: no configuration");
        return SK_ERR;
    }
    return sk_db_open(db, cfg->mariadb.host, cfg->mariadb.port, cfg->mariadb.user, cfg->mariadb.password,
                      cfg->mariadb.database, err, errlen);
}

int sk_db_ping(struct sk_db *db, char *err, size_t errlen)
{
    MYSQL *conn = NULL;
    int rc = SK_ERR;

    if (db == NULL || db->host[0] == '\0') {
        db_err(err, errlen, "MariaDB: connection was never opened");
        goto out;
    }
    if (db->conn != NULL && mysql_ping(db->conn) == 0) {
        rc = SK_OK;
        goto out;
    }
    /* Auto-reconnect is off on purpose: a silent reconnect would lose the session
     * settings and any open transaction without the caller noticing. */
    if (db->conn != NULL) {
        mysql_close(db->conn);
        db->conn = NULL;
    }
    if (db_connect(db, &conn, err, errlen) != SK_OK)
        goto out;
    db->conn = conn;
    rc = SK_OK;
out:
    return rc;
}

void sk_db_close(struct sk_db *db)
{
    if (db == NULL)
        return;
    if (db->conn != NULL)
        mysql_close(db->conn);
    memset(db, 0, sizeof(*db));
}

int sk_db_exec(struct sk_db *db, const char *sql, char *err, size_t errlen)
{
    MYSQL_RES *res;
    int rc = SK_ERR;

    if (db == NULL || db->conn == NULL) {
        db_err(err, errlen, "MariaDB: not connected");
        goto out;
    }
    if (sql == NULL) {
        db_err(err, errlen, "MariaDB: no statement");
        goto out;
    }
    if (mysql_real_query(db->conn, sql, strlen(sql)) != 0) {
        db_err(err, errlen, "MariaDB: %s (error %u)", mysql_error(db->conn), mysql_errno(db->conn));
        goto out;
    }
    /* A statement that returns rows anyway (e.g. SELECT GET_LOCK) must have them
     * read, or the connection is out of sync for the next one. */
    if (mysql_field_count(db->conn) > 0) {
        res = mysql_store_result(db->conn);
        if (res == NULL) {
            db_err(err, errlen, "MariaDB: %s (error %u)", mysql_error(db->conn), mysql_errno(db->conn));
            goto out;
        }
        mysql_free_result(res);
    }
    rc = SK_OK;
out:
    return rc;
}

/* --- times ------------------------------------------------------------------- */

#define DB_MS_PER_DAY 86400000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t db_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void db_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int sk_db_time_from_ms(int64_t ms, MYSQL_TIME *out)
{
    int64_t min_ms = db_days_from_civil(1000, 1, 1) * DB_MS_PER_DAY;
    int64_t max_ms = db_days_from_civil(10000, 1, 1) * DB_MS_PER_DAY - 1;
    int64_t days, rem, y;
    unsigned m, d;

    if (out == NULL || ms < min_ms || ms > max_ms)
        return SK_ERR;
    days = ms / DB_MS_PER_DAY;
    rem = ms % DB_MS_PER_DAY;
    if (rem < 0) {
        rem += DB_MS_PER_DAY;
        days--;
    }
    db_civil_from_days(days, &y, &m, &d);
    memset(out, 0, sizeof(*out));
    out->year = (unsigned)y;
    out->month = m;
    out->day = d;
    out->hour = (unsigned)(rem / 3600000);
    out->minute = (unsigned)(rem / 60000 % 60);
    out->second = (unsigned)(rem / 1000 % 60);
    out->second_part = (unsigned long)(rem % 1000) * 1000;
    out->time_type = MYSQL_TIMESTAMP_DATETIME;
    return SK_OK;
}

int64_t sk_db_time_to_ms(const MYSQL_TIME *t)
{
    int64_t days;

    if (t == NULL)
        return 0;
    days = db_days_from_civil(t->year, t->month, t->day);
    return days * DB_MS_PER_DAY + (int64_t)t->hour * 3600000 + (int64_t)t->minute * 60000 +
           (int64_t)t->second * 1000 + (int64_t)(t->second_part / 1000);
}
