/* The admin API; see admin_api.h and docs/api.md. */
#include "admin_api.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "activity_json.h"
#include "core/daemon.h"
#include "core/db/activity_store.h"
#include "core/db/order_stats.h"
#include "core/health.h"
#include "core/log.h"
#include "core/scheduler.h"
#include "core/timeutil.h"

#define WHO "admin"

#define STATE_BIT(s) (1u << (s))
#define EDITABLE (STATE_BIT(SK_ACT_DRAFT) | STATE_BIT(SK_ACT_SCHEDULED))
#define ON_SALE (STATE_BIT(SK_ACT_PUBLISHED) | STATE_BIT(SK_ACT_RUNNING))

int sk_admin_authorize(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const char *token = lc->d->cfg.admin_token;
    const char *auth = sk_http_header(req, "authorization");
    size_t tlen = strlen(token);
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
        sk_http_error(req, 401, "unauthorized", "missing \"Authorization: Bearer <admin token>\"");
        return SK_ERR;
    }
    auth += 7;
    if (strlen(auth) != tlen || CRYPTO_memcmp(auth, token, tlen) != 0) {
        sk_http_error(req, 401, "unauthorized", "wrong admin token");
        return SK_ERR;
    }
    return SK_OK;
}

/* The admin loop's MariaDB connection, reconnected when it went away; answers 500
 * itself and returns NULL when MariaDB is unreachable. */
static struct sk_db *admin_db(struct sk_http_req *req)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    char err[SK_ERRLEN];
    if (sk_db_ping(&lc->db, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "MariaDB unavailable: %s", err);
        return NULL;
    }
    return &lc->db;
}

/* Load activity {id} of the route into *a; answers 404/500 itself on failure. */
static int load_activity(struct sk_http_req *req, struct sk_db *db, struct sk_activity *a)
{
    char err[SK_ERRLEN];
    uint64_t id = sk_http_param_id(req, 0);
    int rc = sk_store_activity_get(db, id, a, err, sizeof(err));
    if (rc == SK_STORE_NOT_FOUND) {
        sk_http_error(req, 404, "not_found", "no activity %llu", (unsigned long long)id);
        return SK_ERR;
    }
    if (rc != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return SK_ERR;
    }
    return SK_OK;
}

/* Answer with the stored activity `id` (after a change). */
static void respond_activity(struct sk_http_req *req, struct sk_db *db, uint64_t id, int status)
{
    struct sk_activity a;
    char err[SK_ERRLEN];
    if (sk_store_activity_get(db, id, &a, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return;
    }
    sk_http_respond_json(req, status, sk_activity_to_json(&a));
    sk_activity_free(&a);
}

static void conflict(struct sk_http_req *req, const struct sk_activity *a, const char *what)
{
    sk_http_error(req, 409, "conflict", "activity %llu is %s: %s", (unsigned long long)a->id,
                  sk_activity_state_name(a->state), what);
}

/* ?state=published,running → a state mask; answers 400 itself on a bad name. */
static int parse_state_filter(struct sk_http_req *req, unsigned *mask)
{
    const char *q = sk_http_query(req);
    *mask = 0;
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > 6 && strncmp(q, "state=", 6) == 0) {
            char list[128];
            if (len - 6 >= sizeof(list)) {
                sk_http_error(req, 400, "bad_request", "state: too long");
                return SK_ERR;
            }
            memcpy(list, q + 6, len - 6);
            list[len - 6] = '\0';
            char *save = NULL;
            for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                enum sk_activity_state st;
                if (sk_activity_state_parse(s, &st) != SK_OK) {
                    sk_http_error(req, 400, "bad_request",
                                  "state: unknown state \"%s\" (draft scheduled published running ended cancelled)", s);
                    return SK_ERR;
                }
                *mask |= STATE_BIT(st);
            }
        }
        q = end ? end + 1 : q + len;
    }
    return SK_OK;
}

static void list_activities(struct sk_http_req *req)
{
    unsigned mask;
    struct sk_activity *list = NULL;
    size_t n = 0;
    char err[SK_ERRLEN];
    struct sk_db *db;
    if (parse_state_filter(req, &mask) != SK_OK || (db = admin_db(req)) == NULL)
        return;
    if (sk_store_activity_list(db, mask, &list, &n, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, sk_activity_to_json(&list[i]));
    sk_activity_list_free(list, n);
    sk_http_respond_json(req, 200, json_pack("{s:o}", "activities", arr));
}

static void create_activity(struct sk_http_req *req)
{
    struct sk_activity a;
    char err[SK_ERRLEN];
    json_t *body = sk_http_json_body(req, 0, NULL);
    struct sk_db *db;
    if (body == NULL)
        return;
    if (sk_activity_from_json(body, NULL, &a, err, sizeof(err)) != SK_OK) {
        json_decref(body);
        sk_http_error(req, 400, "bad_request", "%s", err);
        return;
    }
    json_decref(body);
    if ((db = admin_db(req)) == NULL)
        goto out;
    if (sk_store_activity_create(db, &a, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        goto out;
    }
    sk_info(WHO, "activity %llu \"%s\" created with %zu items", (unsigned long long)a.id, a.name, a.n_items);
    sk_http_respond_json(req, 201, sk_activity_to_json(&a));
out:
    sk_activity_free(&a);
}

static void get_activity(struct sk_http_req *req)
{
    struct sk_activity a;
    struct sk_db *db = admin_db(req);
    if (db == NULL || load_activity(req, db, &a) != SK_OK)
        return;
    sk_http_respond_json(req, 200, sk_activity_to_json(&a));
    sk_activity_free(&a);
}

static void update_activity(struct sk_http_req *req)
{
    struct sk_activity base, next;
    char err[SK_ERRLEN];
    struct sk_db *db;
    json_t *body = sk_http_json_body(req, 0, NULL);
    if (body == NULL)
        return;
    if ((db = admin_db(req)) == NULL || load_activity(req, db, &base) != SK_OK) {
        json_decref(body);
        return;
    }
    if (!(STATE_BIT(base.state) & EDITABLE)) {
        conflict(req, &base, "only draft or scheduled activities can be changed");
        goto out_base;
    }
    if (sk_activity_from_json(body, &base, &next, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 400, "bad_request", "%s", err);
        goto out_base;
    }
    int rc = sk_store_activity_update(db, &next, err, sizeof(err));
    if (rc == SK_OK)
        sk_http_respond_json(req, 200, sk_activity_to_json(&next));
    else if (rc == SK_STORE_CONFLICT)
        conflict(req, &base, "it changed state meanwhile");
    else if (rc == SK_STORE_NOT_FOUND)
        sk_http_error(req, 404, "not_found", "no activity %llu", (unsigned long long)base.id);
    else
        sk_http_error(req, 500, "internal", "%s", err);
    sk_activity_free(&next);
out_base:
    sk_activity_free(&base);
    json_decref(body);
}

static void delete_activity(struct sk_http_req *req)
{
    struct sk_activity a;
    char err[SK_ERRLEN];
    struct sk_db *db = admin_db(req);
    if (db == NULL || load_activity(req, db, &a) != SK_OK)
        return;
    int rc = sk_store_activity_delete(db, a.id, err, sizeof(err));
    if (rc == SK_OK) {
        sk_info(WHO, "activity %llu deleted", (unsigned long long)a.id);
        sk_http_respond(req, 204, "application/json", "", 0);
    } else if (rc == SK_STORE_CONFLICT) {
        conflict(req, &a, "only draft or scheduled activities can be deleted");
    } else if (rc == SK_STORE_NOT_FOUND) {
        sk_http_error(req, 404, "not_found", "no activity %llu", (unsigned long long)a.id);
    } else {
        sk_http_error(req, 500, "internal", "%s", err);
    }
    sk_activity_free(&a);
}

static void publish_activity(struct sk_http_req *req)
{
    struct sk_activity a;
    char err[SK_ERRLEN];
    int empty = 0, at_given = 0;
    int64_t now = sk_now_ms(), at = now;
    struct sk_db *db;
    json_t *body = sk_http_json_body(req, 1, &empty);
    if (body == NULL && !empty)
        return;
    if (body != NULL) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
            if (strcmp(key, "at") != 0) {
                sk_http_error(req, 400, "bad_request", "%s: unknown field", key);
                goto out_body;
            }
            at_given = !json_is_null(v);
            if (at_given && (!json_is_string(v) || sk_time_parse(json_string_value(v), &at) != SK_OK)) {
                sk_http_error(req, 400, "bad_request",
                              "at: must be an RFC 3339 time such as \"2026-11-25T10:00:00Z\"");
                goto out_body;
            }
        }
    }
    if ((db = admin_db(req)) == NULL || load_activity(req, db, &a) != SK_OK)
        goto out_body;
    if (!(STATE_BIT(a.state) & EDITABLE)) {
        conflict(req, &a, "only draft or scheduled activities can be published");
        goto out;
    }
    if (a.ends_at_ms <= now) {
        sk_http_error(req, 400, "bad_request", "ends_at: the activity has already ended");
        goto out;
    }
    /* A time given must not be after the start; "now" may be (the sale opens at once). */
    if (at_given && at > a.starts_at_ms) {
        sk_http_error(req, 400, "bad_request", "at: must not be after starts_at");
        goto out;
    }
    int rc = sk_store_activity_transition(db, a.id, EDITABLE, SK_ACT_SCHEDULED, at, err, sizeof(err));
    if (rc == SK_STORE_CONFLICT) {
        conflict(req, &a, "it changed state meanwhile");
        goto out;
    }
    if (rc != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        goto out;
    }
    char when[SK_TIME_TEXT_LEN];
    sk_info(WHO, "activity %llu scheduled for publishing at %s", (unsigned long long)a.id, sk_time_format(at, when));
    sk_sched_wake(((struct sk_loop_ctx *)sk_http_loop_data(req))->d->sched);
    respond_activity(req, db, a.id, 200);
out:
    sk_activity_free(&a);
out_body:
    if (body)
        json_decref(body);
}

/* --- work that needs the stock store: one verb per item, then an answer ---------- */

struct stock_job {
    struct sk_http_req *req;
    struct sk_activity a;
    size_t remaining;     /* verbs not answered yet (+1 while starting them) */
    int failed;
    char err[SK_ERRLEN];
    struct {
        int published;
        int64_t initial, remaining;
        const char *state;
    } *items;
    void (*finish)(struct stock_job *job);
};

static struct stock_job *stock_job_new(struct sk_http_req *req, struct sk_activity *a, void (*finish)(struct stock_job *))
{
    struct stock_job *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->items = calloc(a->n_items ? a->n_items : 1, sizeof(*job->items))) == NULL) {
        free(job);
        sk_activity_free(a);
        sk_http_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    job->req = req;
    job->a = *a; /* takes ownership of the items */
    job->finish = finish;
    job->remaining = 1;
    return job;
}

static void stock_job_release(struct stock_job *job)
{
    if (--job->remaining > 0)
        return;
    job->finish(job);
    sk_activity_free(&job->a);
    free(job->items);
    free(job);
}

struct item_cb {
    struct stock_job *job;
    size_t idx;
};

static const char *stock_state_name(enum sk_stock_state s)
{
    return s == SK_STOCK_OPEN ? "open" : s == SK_STOCK_PAUSED ? "paused" : "closed";
}

static void on_item_stock(void *arg, int status, const struct sk_stock_reply *reply, const char *err)
{
    struct item_cb *ic = arg;
    struct stock_job *job = ic->job;
    if (status == SK_OK) {
        job->items[ic->idx].published = 1;
        job->items[ic->idx].initial = reply->initial;
        job->items[ic->idx].remaining = reply->remaining;
        job->items[ic->idx].state = stock_state_name(reply->state);
    } else if (!job->failed) {
        job->failed = 1;
        snprintf(job->err, sizeof(job->err), "item %llu: %s", (unsigned long long)job->a.items[ic->idx].id,
                 err ? err : "stock store failed");
    }
    free(ic);
    stock_job_release(job);
}

/* Start `verb` for every item (none when verb is NULL); each answer lands in
 * on_item_stock, and the job finishes after the last. */
static void stock_job_run(struct stock_job *job, int (*verb)(struct stock_job *, size_t, struct item_cb *))
{
    for (size_t i = 0; verb != NULL && i < job->a.n_items; i++) {
        struct item_cb *ic = malloc(sizeof(*ic));
        if (ic == NULL) {
            job->failed = 1;
            snprintf(job->err, sizeof(job->err), "out of memory");
            break;
        }
        ic->job = job;
        ic->idx = i;
        job->remaining++;
        if (verb(job, i, ic) != SK_OK) {
            job->remaining--;
            free(ic);
            job->failed = 1;
            snprintf(job->err, sizeof(job->err), "stock store unavailable");
        }
    }
    stock_job_release(job);
}

static const struct sk_stock_ops *job_ops(struct stock_job *job, void **conn)
{
    struct sk_loop_ctx *lc = sk_http_loop_data(job->req);
    *conn = lc->stock_conn;
    return lc->d->stock_ops;
}

static int verb_query(struct stock_job *job, size_t i, struct item_cb *ic)
{
    void *conn;
    const struct sk_stock_ops *ops = job_ops(job, &conn);
    return ops->query(conn, job->a.items[i].id, on_item_stock, ic);
}

static int verb_close(struct stock_job *job, size_t i, struct item_cb *ic)
{
    void *conn;
    const struct sk_stock_ops *ops = job_ops(job, &conn);
    return ops->set_state(conn, job->a.items[i].id, SK_STOCK_CLOSED, on_item_stock, ic);
}

static void finish_stock(struct stock_job *job)
{
    struct sk_http_req *req = job->req;
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    const struct sk_activity *a = &job->a;
    char err[SK_ERRLEN];
    int64_t *paid = calloc(a->n_items ? a->n_items : 1, sizeof(*paid));
    uint64_t *ids = calloc(a->n_items ? a->n_items : 1, sizeof(*ids));
    if (paid == NULL || ids == NULL) {
        sk_http_error(req, 500, "internal", "out of memory");
        goto out;
    }
    if (job->failed && (STATE_BIT(a->state) & ON_SALE) && !lc->d->stock_ops->ready(lc->stock_conn)) {
        sk_http_error(req, 503, "overloaded", "stock store unavailable: %s", job->err);
        goto out;
    }
    for (size_t i = 0; i < a->n_items; i++)
        ids[i] = a->items[i].id;
    if (sk_db_ping(&lc->db, err, sizeof(err)) != SK_OK ||
        sk_store_order_counts(&lc->db, a->id, "paid", ids, paid, a->n_items, err, sizeof(err)) != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < a->n_items; i++) {
        /* Items not in the stock store (not published yet) show their planned stock. */
        int pub = job->items[i].published;
        int64_t initial = pub ? job->items[i].initial : a->items[i].stock;
        int64_t remaining = pub ? job->items[i].remaining : a->items[i].stock;
        json_array_append_new(items, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:s}", "item_id",
                                               (json_int_t)a->items[i].id, "sku", a->items[i].sku, "initial",
                                               (json_int_t)initial, "remaining", (json_int_t)remaining, "reserved",
                                               (json_int_t)(initial - remaining), "paid", (json_int_t)paid[i],
                                               "published", pub, "sale_state",
                                               pub ? job->items[i].state : "unpublished"));
    }
    sk_http_respond_json(req, 200,
                         json_pack("{s:I, s:s, s:o}", "activity_id", (json_int_t)a->id, "state",
                                   sk_activity_state_name(a->state), "items", items));
out:
    free(paid);
    free(ids);
}

static void activity_stock(struct sk_http_req *req)
{
    struct sk_activity a;
    struct sk_db *db = admin_db(req);
    if (db == NULL || load_activity(req, db, &a) != SK_OK)
        return;
    struct stock_job *job = stock_job_new(req, &a, finish_stock);
    if (job != NULL)
        stock_job_run(job, (STATE_BIT(job->a.state) & EDITABLE) ? NULL : verb_query);
}

static void finish_cancel(struct stock_job *job)
{
    struct sk_http_req *req = job->req;
    struct sk_loop_ctx *lc = sk_http_loop_data(req);
    char err[SK_ERRLEN];
    if (job->failed) {
        /* Nothing changed in MariaDB: the operator can cancel again. */
        sk_http_error(req, 503, "overloaded", "cannot close the items in the stock store: %s", job->err);
        return;
    }
    unsigned from = EDITABLE | ON_SALE;
    int rc = sk_db_ping(&lc->db, err, sizeof(err));
    if (rc == SK_OK)
        rc = sk_store_activity_transition(&lc->db, job->a.id, from, SK_ACT_CANCELLED, -1, err, sizeof(err));
    if (rc == SK_STORE_CONFLICT) {
        sk_http_error(req, 409, "conflict", "activity %llu changed state meanwhile", (unsigned long long)job->a.id);
        return;
    }
    if (rc != SK_OK) {
        sk_http_error(req, 500, "internal", "%s", err);
        return;
    }
    sk_info(WHO, "activity %llu cancelled", (unsigned long long)job->a.id);
    respond_activity(req, &lc->db, job->a.id, 200);
}

static void cancel_activity(struct sk_http_req *req)
{
    struct sk_activity a;
    struct sk_db *db = admin_db(req);
    if (db == NULL || load_activity(req, db, &a) != SK_OK)
        return;
    if (!(STATE_BIT(a.state) & (EDITABLE | ON_SALE))) {
        conflict(req, &a, "it can no longer be cancelled");
        sk_activity_free(&a);
        return;
    }
    /* Items on sale are closed in the stock store first, so that no buyer gets a
     * unit of an activity that MariaDB already calls cancelled. */
    struct stock_job *job = stock_job_new(req, &a, finish_cancel);
    if (job != NULL)
        stock_job_run(job, (STATE_BIT(job->a.state) & ON_SALE) ? verb_close : NULL);
}

const struct sk_http_route sk_admin_routes[] = {
    SK_HEALTH_ROUTES,
    {"GET", "/admin/v1/activities", list_activities, 0},
    {"POST", "/admin/v1/activities", create_activity, 0},
    {"GET", "/admin/v1/activities/{id}", get_activity, 0},
    {"PUT", "/admin/v1/activities/{id}", update_activity, 0},
    {"DELETE", "/admin/v1/activities/{id}", delete_activity, 0},
    {"POST", "/admin/v1/activities/{id}/publish", publish_activity, 0},
    {"POST", "/admin/v1/activities/{id}/cancel", cancel_activity, 0},
    {"GET", "/admin/v1/activities/{id}/stock", activity_stock, 0},
    {"GET", "/admin/v1/stats", sk_admin_stats, 0},
    {"GET", "/admin/v1/orders", sk_admin_list_orders, 0},
    {"POST", "/admin/v1/orders/{s}/close", sk_admin_close_order, 0},
};
const size_t sk_admin_routes_count = sizeof(sk_admin_routes) / sizeof(sk_admin_routes[0]);
