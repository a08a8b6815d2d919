/* MariaDB connections for the thread pool; see pool.h. */
#include "pool.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int sk_db_pool_init(struct sk_db_pool *p, const struct sk_config *cfg, size_t n)
{
    memset(p, 0, sizeof(*p));
    p->conns = calloc(n, sizeof(*p->conns));
    p->in_use = calloc(n, 1);
    if (p->conns == NULL || p->in_use == NULL || n == 0) {
        free(p->conns);
        free(p->in_use);
        memset(p, 0, sizeof(*p));
        return SK_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        /* sk_db_ping connects a slot that holds its parameters but no connection */
        struct sk_db *db = &p->conns[i];
        snprintf(db->host, sizeof(db->host), "%s", cfg->mariadb.host);
        db->port = cfg->mariadb.port;
        snprintf(db->user, sizeof(db->user), "%s", cfg->mariadb.user);
        snprintf(db->password, sizeof(db->password), "%s", cfg->mariadb.password);
        snprintf(db->database, sizeof(db->database), "%s", cfg->mariadb.database);
    }
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return SK_OK;
}

struct sk_db *sk_db_pool_get(struct sk_db_pool *p, char *err, size_t errlen)
{
    struct sk_db *db = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (size_t i = 0; i < p->n && db == NULL; i++) {
            if (!p->in_use[i]) {
                p->in_use[i] = 1;
                db = &p->conns[i];
            }
        }
        if (db != NULL)
            break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (sk_db_ping(db, err, errlen) != SK_OK) {
        sk_db_pool_put(p, db);
        return NULL;
    }
    return db;
}

void sk_db_pool_put(struct sk_db_pool *p, struct sk_db *db)
{
    pthread_mutex_lock(&p->mu);
    p->in_use[db - p->conns] = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void sk_db_pool_free(struct sk_db_pool *p)
{
    if (p->conns == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (p->conns[i].conn != NULL)
            mysql_close(p->conns[i].conn);
    free(p->conns);
    free(p->in_use);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    memset(p, 0, sizeof(*p));
}
