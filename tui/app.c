/* The console's controller: loop, requests, status line, modal states; see app.h. */
#include "app.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/timeutil.h"

#include "format.h"
#include "ui.h"
#include "view.h"

/* An action's result stays in the status line this long. */
#define STATUS_MS 10000
/* The loop wakes at least this often, so countdowns tick. */
#define TICK_MS 250

static const struct sk_con_screen *const screens[SK_CON_SCR_COUNT] = {&sk_con_view_activities, &sk_con_view_live,
                                                                      &sk_con_view_orders, &sk_con_view_blacklist};

void sk_con_app_say(struct sk_con_app *app, int is_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->status, sizeof(app->status), fmt, ap);
    va_end(ap);
    app->status_is_error = is_error;
    app->status_at_mono = sk_mono_ms();
}

/* --- requests ------------------------------------------------------------------ */

static const enum sk_con_req fetch_req[SK_CON_RES_COUNT] = {
    [SK_CON_RES_ACTIVITIES] = SK_CON_REQ_GET_ACTIVITIES, [SK_CON_RES_STOCK] = SK_CON_REQ_GET_STOCK,
    [SK_CON_RES_STATS] = SK_CON_REQ_GET_STATS,           [SK_CON_RES_ORDERS] = SK_CON_REQ_GET_ORDERS,
    [SK_CON_RES_BLACKLIST] = SK_CON_REQ_GET_BLACKLIST,
};

uint64_t sk_con_app_live_activity(const struct sk_con_app *app)
{
    return app->live_id != 0 ? app->live_id : sk_con_model_live_pick(&app->model);
}

/* The orders query for the current filter. */
static void orders_query(const struct sk_con_app *app, char *buf, size_t len)
{
    int n = snprintf(buf, len, "/admin/v1/orders?limit=100");
    if (app->order_status >= 0 && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "&status=%s",
                      sk_con_ord_status_name((enum sk_con_ord_status)app->order_status));
    if (app->order_activity != 0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "&activity_id=%llu", (unsigned long long)app->order_activity);
}

void sk_con_app_fetch(struct sk_con_app *app, enum sk_con_res_kind kind)
{
    struct sk_con_tag tag = {.kind = (int)fetch_req[kind]};
    char path[128], err[SK_CON_MSGLEN];
    struct sk_con_res *r = &app->model.res[kind];

    if (r->pending)
        return;
    switch (kind) {
    case SK_CON_RES_ACTIVITIES:
        snprintf(path, sizeof(path), "/admin/v1/activities");
        break;
    case SK_CON_RES_STOCK:
        tag.id = sk_con_app_live_activity(app);
        if (tag.id == 0)
            return;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu/stock", (unsigned long long)tag.id);
        break;
    case SK_CON_RES_STATS:
        snprintf(path, sizeof(path), "/admin/v1/stats");
        break;
    case SK_CON_RES_ORDERS:
        orders_query(app, path, sizeof(path));
        snprintf(tag.text, sizeof(tag.text), "%s", path);
        break;
    case SK_CON_RES_BLACKLIST:
        snprintf(path, sizeof(path), "/admin/v1/blacklist");
        break;
    default:
        return;
    }
    if (sk_con_net_start(app->net, "GET", path, NULL, &tag, err, sizeof(err)) != SK_OK) {
        sk_con_app_say(app, 1, "%s", err);
        return;
    }
    r->pending = 1;
}

void sk_con_app_fetch_every(struct sk_con_app *app, enum sk_con_res_kind kind, int64_t now_mono_ms, int64_t period_ms)
{
    if (now_mono_ms < app->next_fetch[kind] || app->model.res[kind].pending)
        return;
    app->next_fetch[kind] = now_mono_ms + period_ms;
    sk_con_app_fetch(app, kind);
}

void sk_con_app_fetch_soon(struct sk_con_app *app, enum sk_con_res_kind kind)
{
    app->next_fetch[kind] = 0;
}

void sk_con_app_send(struct sk_con_app *app, const char *method, const char *path, const char *body,
                     const struct sk_con_tag *tag)
{
    char err[SK_CON_MSGLEN];
    if (sk_con_net_start(app->net, method, path, body, tag, err, sizeof(err)) != SK_OK)
        sk_con_app_say(app, 1, "%s", err);
}

/* What identifies the selected row of a list, so that the same activity, order or
 * user stays selected when a refresh reorders the list under the operator. */
struct sel_key {
    uint64_t id;
    char order_no[SK_CON_ORDER_NO_SIZE];
};

static void remember_sel(const struct sk_con_app *app, enum sk_con_res_kind kind, struct sel_key *k)
{
    const struct sk_con_model *m = &app->model;
    memset(k, 0, sizeof(*k));
    if (kind == SK_CON_RES_ACTIVITIES) {
        long sel = app->cur[SK_CON_SCR_ACTIVITIES].sel;
        k->id = app->select_activity != 0                   ? app->select_activity
                : sel >= 0 && (size_t)sel < m->activities.n ? m->activities.v[sel].id
                                                            : 0;
    } else if (kind == SK_CON_RES_ORDERS) {
        long sel = app->cur[SK_CON_SCR_ORDERS].sel;
        if (sel >= 0 && (size_t)sel < m->orders.n)
            snprintf(k->order_no, sizeof(k->order_no), "%s", m->orders.v[sel].order_no);
    } else if (kind == SK_CON_RES_BLACKLIST) {
        long sel = app->cur[SK_CON_SCR_BLACKLIST].sel;
        if (sel >= 0 && (size_t)sel < m->blacklist.n)
            k->id = m->blacklist.v[sel].user_id;
    }
}

static void restore_sel(struct sk_con_app *app, enum sk_con_res_kind kind, const struct sel_key *k)
{
    const struct sk_con_model *m = &app->model;
    if (kind == SK_CON_RES_ACTIVITIES && k->id != 0) {
        for (size_t i = 0; i < m->activities.n; i++)
            if (m->activities.v[i].id == k->id) {
                app->cur[SK_CON_SCR_ACTIVITIES].sel = (long)i;
                if (k->id == app->select_activity)
                    app->select_activity = 0;
            }
    } else if (kind == SK_CON_RES_ORDERS && k->order_no[0] != '\0') {
        for (size_t i = 0; i < m->orders.n; i++)
            if (strcmp(m->orders.v[i].order_no, k->order_no) == 0)
                app->cur[SK_CON_SCR_ORDERS].sel = (long)i;
    } else if (kind == SK_CON_RES_BLACKLIST && k->id != 0) {
        for (size_t i = 0; i < m->blacklist.n; i++)
            if (m->blacklist.v[i].user_id == k->id)
                app->cur[SK_CON_SCR_BLACKLIST].sel = (long)i;
    }
}

/* The answer to a GET: into the model; connection trouble into the status line. */
static void on_fetched(struct sk_con_app *app, enum sk_con_res_kind kind, const struct sk_con_tag *tag,
                       const struct sk_con_answer *a)
{
    struct sk_con_res *r = &app->model.res[kind];
    struct sel_key keep;
    char query[128];
    r->pending = 0;
    /* An answer for what the screen no longer shows is dropped and asked again. */
    if (kind == SK_CON_RES_ORDERS) {
        orders_query(app, query, sizeof(query));
        if (strcmp(query, tag->text) != 0) {
            sk_con_app_fetch_soon(app, kind);
            return;
        }
    }
    if (kind == SK_CON_RES_STOCK && tag->id != sk_con_app_live_activity(app)) {
        sk_con_app_fetch_soon(app, kind);
        return;
    }
    remember_sel(app, kind, &keep);
    enum sk_con_outcome o = sk_con_model_apply(&app->model, kind, a, sk_mono_ms());
    switch (o) {
    case SK_CON_UNREACHABLE:
    case SK_CON_UNAUTHORIZED:
    case SK_CON_FAILED:
    case SK_CON_BAD_ANSWER:
        snprintf(app->conn_err, sizeof(app->conn_err), "%s", r->err);
        break;
    default:
        app->conn_err[0] = '\0';
        break;
    }
    if (o == SK_CON_OK)
        restore_sel(app, kind, &keep);
    if (o == SK_CON_OK && strncmp(app->status, "connecting to ", 14) == 0)
        app->status[0] = '\0';
}

/* Is the form up, maybe under the help or a confirmation? */
static int form_open(const struct sk_con_app *app)
{
    return app->modal == SK_CON_MODAL_FORM || app->under == SK_CON_MODAL_FORM;
}

/* What a change request was, for the status line: "publish activity 3". */
static const char *describe(const struct sk_con_tag *t, char *buf, size_t len)
{
    unsigned long long id = (unsigned long long)t->id;
    switch (t->kind) {
    case SK_CON_REQ_CREATE:
        snprintf(buf, len, "create activity");
        break;
    case SK_CON_REQ_UPDATE:
        snprintf(buf, len, "save activity %llu", id);
        break;
    case SK_CON_REQ_DELETE:
        snprintf(buf, len, "delete activity %llu", id);
        break;
    case SK_CON_REQ_PUBLISH:
        snprintf(buf, len, "publish activity %llu", id);
        break;
    case SK_CON_REQ_CANCEL:
        snprintf(buf, len, "cancel activity %llu", id);
        break;
    case SK_CON_REQ_CLOSE_ORDER:
        snprintf(buf, len, "close order %s", t->text);
        break;
    case SK_CON_REQ_BL_ADD:
        snprintf(buf, len, "blacklist user %llu", id);
        break;
    case SK_CON_REQ_BL_REMOVE:
        snprintf(buf, len, "unblacklist user %llu", id);
        break;
    default:
        snprintf(buf, len, "request");
        break;
    }
    return buf;
}

/* The daemon's answer to a change the operator asked for. */
static void on_changed(struct sk_con_app *app, const struct sk_con_tag *tag, const struct sk_con_answer *a)
{
    char msg[SK_CON_MSGLEN], when[SK_CON_FMT_LEN], in[SK_CON_FMT_LEN], perr[SK_CON_MSGLEN], what[160];
    struct sk_con_activity act;
    enum sk_con_outcome o = sk_con_classify(a, msg, sizeof(msg));
    int parsed = 0;

    if (tag->kind == SK_CON_REQ_CREATE || tag->kind == SK_CON_REQ_UPDATE)
        app->form_saving = 0;
    if (o != SK_CON_OK) {
        sk_con_app_say(app, 1, "%s: %s", describe(tag, what, sizeof(what)), msg);
        if (form_open(app) && (tag->kind == SK_CON_REQ_CREATE || tag->kind == SK_CON_REQ_UPDATE))
            sk_con_form_focus_error(&app->form, msg);
        if (o == SK_CON_UNREACHABLE || o == SK_CON_UNAUTHORIZED)
            snprintf(app->conn_err, sizeof(app->conn_err), "%s", msg);
        return;
    }
    app->conn_err[0] = '\0';
    /* Saved: the form goes (even from under the help), so it cannot be sent twice. */
    if ((tag->kind == SK_CON_REQ_CREATE || tag->kind == SK_CON_REQ_UPDATE) && form_open(app)) {
        sk_con_form_free(&app->form);
        if (app->modal == SK_CON_MODAL_FORM)
            app->modal = SK_CON_MODAL_NONE;
        else
            app->under = SK_CON_MODAL_NONE;
    }
    switch (tag->kind) {
    case SK_CON_REQ_CREATE:
    case SK_CON_REQ_UPDATE:
    case SK_CON_REQ_PUBLISH:
    case SK_CON_REQ_CANCEL:
        parsed = sk_con_parse_activity(a->body, a->len, &act, perr, sizeof(perr)) == SK_OK;
        if (!parsed) {
            sk_con_app_say(app, 1, "%s: done, but bad answer from the daemon: %s", describe(tag, what, sizeof(what)),
                           perr);
            break;
        }
        if (tag->kind == SK_CON_REQ_PUBLISH)
            sk_con_app_say(app, 0, "activity %llu \"%s\" %s: publishes %s (%s)", (unsigned long long)act.id, act.name,
                           sk_con_act_state_name(act.state),
                           sk_con_fmt_time(act.publish_at, SK_CON_TIME_FULL, when, sizeof(when)),
                           sk_con_fmt_countdown(act.publish_at, sk_now_ms(), in, sizeof(in)));
        else if (tag->kind == SK_CON_REQ_CANCEL)
            sk_con_app_say(app, 0, "activity %llu \"%s\" cancelled: its sale has stopped", (unsigned long long)act.id,
                           act.name);
        else
            sk_con_app_say(app, 0, "activity %llu \"%s\" %s (%s)", (unsigned long long)act.id, act.name,
                           tag->kind == SK_CON_REQ_CREATE ? "created" : "saved", sk_con_act_state_name(act.state));
        if (tag->kind == SK_CON_REQ_CREATE || tag->kind == SK_CON_REQ_UPDATE)
            app->select_activity = act.id;
        sk_con_activity_free(&act);
        break;
    case SK_CON_REQ_DELETE:
        sk_con_app_say(app, 0, "activity %llu deleted", (unsigned long long)tag->id);
        break;
    case SK_CON_REQ_CLOSE_ORDER:
        sk_con_app_say(app, 0, "order %s closed by hand: its unit goes back to stock", tag->text);
        sk_con_app_fetch_soon(app, SK_CON_RES_ORDERS);
        sk_con_app_fetch_soon(app, SK_CON_RES_STOCK);
        break;
    case SK_CON_REQ_BL_ADD:
        sk_con_app_say(app, 0, "user %llu blacklisted", (unsigned long long)tag->id);
        sk_con_app_fetch_soon(app, SK_CON_RES_BLACKLIST);
        break;
    case SK_CON_REQ_BL_REMOVE:
        sk_con_app_say(app, 0, "user %llu is off the blacklist", (unsigned long long)tag->id);
        sk_con_app_fetch_soon(app, SK_CON_RES_BLACKLIST);
        break;
    default:
        break;
    }
    sk_con_app_fetch_soon(app, SK_CON_RES_ACTIVITIES);
}

static void on_answer(void *arg, const struct sk_con_tag *tag, const struct sk_con_answer *a)
{
    struct sk_con_app *app = arg;
    for (int k = 0; k < SK_CON_RES_COUNT; k++)
        if ((int)fetch_req[k] == tag->kind) {
            on_fetched(app, (enum sk_con_res_kind)k, tag, a);
            return;
        }
    on_changed(app, tag, a);
}

/* --- modal states -------------------------------------------------------------- */

void sk_con_app_confirm(struct sk_con_app *app, enum sk_con_ask ask, const struct sk_con_tag *tag, const char *question)
{
    app->under = app->modal == SK_CON_MODAL_FORM ? SK_CON_MODAL_FORM : SK_CON_MODAL_NONE;
    app->modal = SK_CON_MODAL_CONFIRM;
    app->ask = ask;
    app->ask_tag = *tag;
    snprintf(app->question, sizeof(app->question), "%s", question);
}

void sk_con_app_prompt(struct sk_con_app *app, enum sk_con_ask ask, const struct sk_con_tag *tag, const char *label,
                       const char *initial)
{
    app->under = SK_CON_MODAL_NONE;
    app->modal = SK_CON_MODAL_PROMPT;
    app->ask = ask;
    app->ask_tag = *tag;
    snprintf(app->question, sizeof(app->question), "%s", label);
    if (initial != app->prompt.text) /* asking again keeps what was typed */
        sk_con_field_set(&app->prompt, initial != NULL ? initial : "");
}

void sk_con_app_open_form(struct sk_con_app *app, const struct sk_con_activity *a)
{
    if (a == NULL)
        sk_con_form_init_new(&app->form);
    else
        sk_con_form_init_edit(&app->form, a);
    app->form_dirty = 0;
    app->form_saving = 0;
    app->modal = SK_CON_MODAL_FORM;
}

static void close_modal(struct sk_con_app *app)
{
    app->modal = app->under;
    app->under = SK_CON_MODAL_NONE;
    app->ask = SK_CON_ASK_NONE;
}

/* A whole number typed in a prompt (blank for 0 when allowed). */
static int prompt_id(const char *text, int blank_ok, uint64_t *out)
{
    char *end;
    while (*text == ' ')
        text++;
    if (*text == '\0') {
        *out = 0;
        return blank_ok ? SK_OK : SK_ERR;
    }
    if (*text < '0' || *text > '9')
        return SK_ERR;
    unsigned long long v = strtoull(text, &end, 10);
    while (*end == ' ')
        end++;
    if (*end != '\0' || v == 0 || v > (1ULL << 53))
        return SK_ERR;
    *out = v;
    return SK_OK;
}

/* The operator said yes (confirm) or typed a line and pressed Enter (prompt). */
static void carry_out(struct sk_con_app *app)
{
    struct sk_con_tag t = app->ask_tag;
    enum sk_con_ask ask = app->ask;
    const char *text = app->prompt.text;
    char path[200], esc[128], body[400];
    int64_t at;
    uint64_t id;

    close_modal(app);
    switch (ask) {
    case SK_CON_ASK_PUBLISH_NOW:
        t.kind = SK_CON_REQ_PUBLISH;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu/publish", (unsigned long long)t.id);
        sk_con_app_send(app, "POST", path, NULL, &t);
        break;
    case SK_CON_ASK_PUBLISH_AT: {
        char stamp[SK_TIME_TEXT_LEN];
        while (*text == ' ')
            text++;
        if (*text != '\0' && sk_con_parse_time_input(text, sk_now_ms(), &at) != SK_OK) {
            sk_con_app_say(app, 1, "\"%.60s\" is not a time: type 2026-11-11 10:00 (UTC), +10m or now", text);
            sk_con_app_prompt(app, ask, &t, "Publish at (UTC; +10m; empty: now):", app->prompt.text);
            return;
        }
        t.kind = SK_CON_REQ_PUBLISH;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu/publish", (unsigned long long)t.id);
        if (*text == '\0') {
            sk_con_app_send(app, "POST", path, NULL, &t);
        } else {
            /* Whole seconds: what an operator typed, whatever "+10m" added to now. */
            snprintf(body, sizeof(body), "{\"at\":\"%s\"}", sk_time_format(at - at % 1000, stamp));
            sk_con_app_send(app, "POST", path, body, &t);
        }
        break;
    }
    case SK_CON_ASK_CANCEL:
        t.kind = SK_CON_REQ_CANCEL;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu/cancel", (unsigned long long)t.id);
        sk_con_app_send(app, "POST", path, NULL, &t);
        break;
    case SK_CON_ASK_DELETE:
        t.kind = SK_CON_REQ_DELETE;
        snprintf(path, sizeof(path), "/admin/v1/activities/%llu", (unsigned long long)t.id);
        sk_con_app_send(app, "DELETE", path, NULL, &t);
        break;
    case SK_CON_ASK_CLOSE_ORDER:
        t.kind = SK_CON_REQ_CLOSE_ORDER;
        snprintf(path, sizeof(path), "/admin/v1/orders/%s/close", sk_con_net_escape(t.text, esc, sizeof(esc)));
        sk_con_app_send(app, "POST", path, NULL, &t);
        break;
    case SK_CON_ASK_ORDER_ACTIVITY:
        if (prompt_id(text, 1, &id) != SK_OK) {
            sk_con_app_say(app, 1, "\"%.40s\" is not an activity id (a whole number; empty: all)", text);
            sk_con_app_prompt(app, ask, &t, "Orders of activity id (empty: all):", app->prompt.text);
            return;
        }
        app->order_activity = id;
        app->cur[SK_CON_SCR_ORDERS].sel = 0;
        sk_con_app_fetch_soon(app, SK_CON_RES_ORDERS);
        break;
    case SK_CON_ASK_BL_USER:
        if (prompt_id(text, 0, &id) != SK_OK) {
            sk_con_app_say(app, 1, "\"%.40s\" is not a user id (a whole number from 1)", text);
            sk_con_app_prompt(app, ask, &t, "Blacklist user id:", app->prompt.text);
            return;
        }
        t.id = id;
        snprintf(path, sizeof(path), "Reason for blacklisting user %llu:", (unsigned long long)id);
        sk_con_app_prompt(app, SK_CON_ASK_BL_REASON, &t, path, NULL);
        break;
    case SK_CON_ASK_BL_REASON: {
        json_t *o = json_pack("{s:I, s:s}", "user_id", (json_int_t)t.id, "reason", text);
        char *js = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (js == NULL) {
            sk_con_app_say(app, 1, "cannot build the request");
            break;
        }
        t.kind = SK_CON_REQ_BL_ADD;
        sk_con_app_send(app, "POST", "/admin/v1/blacklist", js, &t);
        free(js);
        break;
    }
    case SK_CON_ASK_BL_REMOVE:
        t.kind = SK_CON_REQ_BL_REMOVE;
        snprintf(path, sizeof(path), "/admin/v1/blacklist/%llu", (unsigned long long)t.id);
        sk_con_app_send(app, "DELETE", path, NULL, &t);
        break;
    case SK_CON_ASK_DISCARD_FORM:
        sk_con_form_free(&app->form);
        app->modal = SK_CON_MODAL_NONE;
        sk_con_app_say(app, 0, "form left without saving");
        break;
    default:
        break;
    }
}

/* Put a typed character into a field. */
static int insert_char(struct sk_con_field *fl, int key)
{
    char u[4];
    size_t n;
    if (key < 0x20 || key == 0x7f || key >= 0x110000 || (key >= 0xD800 && key < 0xE000))
        return SK_ERR;
    if (key < 0x80) {
        u[0] = (char)key;
        n = 1;
    } else if (key < 0x800) {
        u[0] = (char)(0xC0 | (key >> 6));
        u[1] = (char)(0x80 | (key & 0x3F));
        n = 2;
    } else if (key < 0x10000) {
        u[0] = (char)(0xE0 | (key >> 12));
        u[1] = (char)(0x80 | ((key >> 6) & 0x3F));
        u[2] = (char)(0x80 | (key & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (key >> 18));
        u[1] = (char)(0x80 | ((key >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((key >> 6) & 0x3F));
        u[3] = (char)(0x80 | (key & 0x3F));
        n = 4;
    }
    return sk_con_field_insert(fl, u, n);
}

/* Editing keys shared by the form and the prompt; 1 if handled. */
static int edit_field(struct sk_con_field *fl, enum sk_con_action a, int key, int *changed)
{
    switch (a) {
    case SK_CON_A_CURSOR_LEFT:
        sk_con_field_left(fl);
        return 1;
    case SK_CON_A_CURSOR_RIGHT:
        sk_con_field_right(fl);
        return 1;
    case SK_CON_A_CURSOR_HOME:
        sk_con_field_home(fl);
        return 1;
    case SK_CON_A_CURSOR_END:
        sk_con_field_end(fl);
        return 1;
    case SK_CON_A_ERASE_BACK:
        sk_con_field_backspace(fl);
        *changed = 1;
        return 1;
    case SK_CON_A_ERASE_FORWARD:
        sk_con_field_delete(fl);
        *changed = 1;
        return 1;
    case SK_CON_A_NONE:
        if (insert_char(fl, key) == SK_OK) {
            *changed = 1;
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

static void form_key(struct sk_con_app *app, int key)
{
    enum sk_con_action a = sk_con_key_action(SK_CON_IN_FORM, key);
    struct sk_con_form *f = &app->form;
    char err[SK_CON_MSGLEN];
    int changed = 0;
    size_t bad;
    char *body = NULL;

    switch (a) {
    case SK_CON_A_HELP:
        app->under = SK_CON_MODAL_FORM;
        app->modal = SK_CON_MODAL_HELP;
        return;
    case SK_CON_A_NEXT_FIELD:
    case SK_CON_A_PREV_FIELD:
        /* Say what is wrong with the field being left, but let the operator move. */
        if (sk_con_form_check_field(f, f->focus, sk_now_ms(), err, sizeof(err)) != SK_OK)
            sk_con_app_say(app, 1, "%s", err);
        else if (app->status_is_error)
            app->status[0] = '\0';
        if (a == SK_CON_A_NEXT_FIELD)
            sk_con_form_next(f);
        else
            sk_con_form_prev(f);
        return;
    case SK_CON_A_SAVE: {
        struct sk_con_tag t = {0};
        char path[96];
        if (app->form_saving) {
            sk_con_app_say(app, 0, "saving… waiting for the daemon");
            return;
        }
        if (sk_con_form_build(f, sk_now_ms(), &body, &bad, err, sizeof(err)) != SK_OK) {
            f->focus = bad;
            sk_con_app_say(app, 1, "%s", err);
            return;
        }
        t.id = f->activity_id;
        if (f->activity_id == 0) {
            t.kind = SK_CON_REQ_CREATE;
            snprintf(path, sizeof(path), "/admin/v1/activities");
        } else {
            t.kind = SK_CON_REQ_UPDATE;
            snprintf(path, sizeof(path), "/admin/v1/activities/%llu", (unsigned long long)f->activity_id);
        }
        app->form_saving = 1;
        sk_con_app_say(app, 0, "saving…");
        sk_con_app_send(app, f->activity_id == 0 ? "POST" : "PUT", path, body, &t);
        free(body);
        return;
    }
    case SK_CON_A_DISCARD:
        if (app->form_saving) {
            sk_con_app_say(app, 0, "saving… waiting for the daemon");
        } else if (app->form_dirty) {
            struct sk_con_tag t = {0};
            sk_con_app_confirm(app, SK_CON_ASK_DISCARD_FORM, &t, "Leave the form without saving your changes?");
        } else {
            sk_con_form_free(f);
            app->modal = SK_CON_MODAL_NONE;
        }
        return;
    case SK_CON_A_ADD_ITEM:
        if (sk_con_form_add_item(f, err, sizeof(err)) != SK_OK)
            sk_con_app_say(app, 1, "%s", err);
        else
            app->form_dirty = 1;
        return;
    case SK_CON_A_REMOVE_ITEM:
        if (sk_con_form_remove_item(f, err, sizeof(err)) != SK_OK)
            sk_con_app_say(app, 1, "%s", err);
        else
            app->form_dirty = 1;
        return;
    default:
        if (edit_field(sk_con_form_field(f, f->focus), a, key, &changed) && changed)
            app->form_dirty = 1;
        return;
    }
}

static void prompt_key(struct sk_con_app *app, int key)
{
    enum sk_con_action a = sk_con_key_action(SK_CON_IN_PROMPT, key);
    int changed = 0;
    if (a == SK_CON_A_ACCEPT)
        carry_out(app);
    else if (a == SK_CON_A_DISCARD)
        close_modal(app);
    else
        edit_field(&app->prompt, a, key, &changed);
}

void sk_con_app_show(struct sk_con_app *app, enum sk_con_screen_id s)
{
    app->screen = s;
    /* Show fresh data at once rather than at the next period. */
    for (int k = 0; k < SK_CON_RES_COUNT; k++)
        sk_con_app_fetch_soon(app, (enum sk_con_res_kind)k);
}

static void screen_key(struct sk_con_app *app, int key)
{
    const struct sk_con_screen *scr = screens[app->screen];
    enum sk_con_action a = sk_con_key_action(scr->where, key);
    if (a == SK_CON_A_NONE)
        return;
    enum sk_con_handled h = scr->action(app, a);
    if (h == SK_CON_LEAVE) {
        app->quit = 1;
        return;
    }
    if (h == SK_CON_HANDLED)
        return;
    switch (a) {
    case SK_CON_A_QUIT:
        app->quit = 1;
        break;
    case SK_CON_A_HELP:
        app->under = SK_CON_MODAL_NONE;
        app->modal = SK_CON_MODAL_HELP;
        break;
    case SK_CON_A_SHOW_ACTIVITIES:
        sk_con_app_show(app, SK_CON_SCR_ACTIVITIES);
        break;
    case SK_CON_A_SHOW_LIVE:
        sk_con_app_show(app, SK_CON_SCR_LIVE);
        break;
    case SK_CON_A_SHOW_ORDERS:
        sk_con_app_show(app, SK_CON_SCR_ORDERS);
        break;
    case SK_CON_A_SHOW_BLACKLIST:
        sk_con_app_show(app, SK_CON_SCR_BLACKLIST);
        break;
    case SK_CON_A_NEXT_SCREEN:
        sk_con_app_show(app, (app->screen + 1) % SK_CON_SCR_COUNT);
        break;
    case SK_CON_A_PREV_SCREEN:
        sk_con_app_show(app, (app->screen + SK_CON_SCR_COUNT - 1) % SK_CON_SCR_COUNT);
        break;
    case SK_CON_A_REFRESH:
        sk_con_app_show(app, app->screen);
        sk_con_app_say(app, 0, "asking the daemon again");
        break;
    default:
        break;
    }
}

static void on_key(struct sk_con_app *app, int key)
{
    if (key == SK_CON_KEY_RESIZE || key == SK_CON_KEY_NONE)
        return; /* the next draw uses the new size */
    switch (app->modal) {
    case SK_CON_MODAL_HELP:
        close_modal(app);
        break;
    case SK_CON_MODAL_CONFIRM:
        switch (sk_con_key_action(SK_CON_IN_CONFIRM, key)) {
        case SK_CON_A_YES:
            carry_out(app);
            break;
        case SK_CON_A_NO:
            close_modal(app);
            sk_con_app_say(app, 0, "nothing done");
            break;
        default:
            break;
        }
        break;
    case SK_CON_MODAL_PROMPT:
        prompt_key(app, key);
        break;
    case SK_CON_MODAL_FORM:
        form_key(app, key);
        break;
    default:
        screen_key(app, key);
        break;
    }
}

/* --- drawing ------------------------------------------------------------------- */

static void draw_title(struct sk_con_app *app, int cols)
{
    char clock[SK_CON_FMT_LEN];
    int x;
    sk_con_ui_fill(0, 0, cols, SK_CON_R_TITLE, ' ');
    x = 1 + sk_con_ui_text(0, 1, cols - 1, SK_CON_R_TITLE, 0, "seckill");
    for (int s = 0; s < SK_CON_SCR_COUNT && x < cols; s++) {
        x += 1;
        x += sk_con_ui_textf(0, x, cols - x, s == (int)app->screen ? SK_CON_R_TAB_ON : SK_CON_R_TITLE, 0, " %d %s ",
                             s + 1, screens[s]->title);
    }
    sk_con_fmt_time(sk_now_ms(), SK_CON_TIME_SHORT, clock, sizeof(clock));
    int w = sk_con_str_width(clock) + 2;
    if (cols - x > w)
        sk_con_ui_textf(0, cols - w, w, SK_CON_R_TITLE, 0, "%sZ", clock + 6);
}

static void draw_status(struct sk_con_app *app, int y, int cols)
{
    int64_t now = sk_mono_ms();
    int fresh = app->status[0] != '\0' && now - app->status_at_mono < STATUS_MS;
    if (app->modal == SK_CON_MODAL_CONFIRM) {
        /* the question is cut, never the answer keys */
        int x = sk_con_ui_textf(y, 0, cols - 6, SK_CON_R_WARN, 0, "%s", app->question);
        sk_con_ui_text(y, x, cols - x, SK_CON_R_WARN, 1, " (y/n)");
        return;
    }
    if (app->modal == SK_CON_MODAL_PROMPT) {
        int x = sk_con_ui_textf(y, 0, cols, SK_CON_R_WARN, 0, "%s ", app->question);
        sk_con_view_field(y, x, cols - x, &app->prompt, 1, &app->cursor_y, &app->cursor_x);
        return;
    }
    if (fresh && app->status_is_error)
        sk_con_ui_text(y, 0, cols, SK_CON_R_STATUS_ERR, 1, app->status);
    else if (app->conn_err[0] != '\0')
        sk_con_ui_text(y, 0, cols, SK_CON_R_STATUS_ERR, 1, app->conn_err);
    else if (fresh)
        sk_con_ui_text(y, 0, cols, SK_CON_R_OK, 1, app->status);
    else {
        int64_t last = 0;
        char ago[SK_CON_FMT_LEN];
        for (int k = 0; k < SK_CON_RES_COUNT; k++)
            if (app->model.res[k].at_mono_ms > last)
                last = app->model.res[k].at_mono_ms;
        if (last > 0)
            sk_con_ui_textf(y, 0, cols, SK_CON_R_DIM, 1, "daemon %s · answered %s ago", app->settings->admin_url,
                            sk_con_fmt_duration(now - last, ago, sizeof(ago)));
        else
            sk_con_ui_textf(y, 0, cols, SK_CON_R_DIM, 1, "daemon %s · waiting for its first answer",
                            app->settings->admin_url);
    }
}

static void draw_help_bar(unsigned where, int y, int cols)
{
    const struct sk_con_binding *b[32];
    size_t n = sk_con_help_bar(where, cols, b, sizeof(b) / sizeof(b[0]));
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            x += sk_con_ui_text(y, x, 2, SK_CON_R_NORMAL, 1, "");
        x += sk_con_ui_text(y, x, cols - x, SK_CON_R_KEY, 0, b[i]->key_name);
        x += sk_con_ui_textf(y, x, cols - x, SK_CON_R_NORMAL, 0, " %s", b[i]->label);
    }
}

static unsigned modal_where(const struct sk_con_app *app)
{
    switch (app->modal) {
    case SK_CON_MODAL_HELP:
        return SK_CON_IN_HELP;
    case SK_CON_MODAL_CONFIRM:
        return SK_CON_IN_CONFIRM;
    case SK_CON_MODAL_PROMPT:
        return SK_CON_IN_PROMPT;
    case SK_CON_MODAL_FORM:
        return SK_CON_IN_FORM;
    default:
        return screens[app->screen]->where;
    }
}

static void draw(struct sk_con_app *app)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    app->cursor_y = app->cursor_x = -1;
    if (rows < SK_CON_MIN_ROWS || cols < SK_CON_MIN_COLS) {
        sk_con_ui_textf(0, 0, cols, SK_CON_R_WARN, 0, "terminal too small:");
        sk_con_ui_textf(1, 0, cols, SK_CON_R_WARN, 0, "%dx%d needed,", SK_CON_MIN_COLS, SK_CON_MIN_ROWS);
        sk_con_ui_textf(2, 0, cols, SK_CON_R_WARN, 0, "now %dx%d", cols, rows);
        curs_set(0);
        refresh();
        return;
    }
    draw_title(app, cols);
    /* What is below the modal state: the form or the screen. */
    enum sk_con_modal base = app->modal == SK_CON_MODAL_FORM   ? SK_CON_MODAL_FORM
                             : app->modal == SK_CON_MODAL_NONE ? SK_CON_MODAL_NONE
                                                               : app->under;
    if (base == SK_CON_MODAL_FORM)
        sk_con_view_form_draw(app, 1, rows - 3, cols);
    else
        screens[app->screen]->draw(app, 1, rows - 3, cols);
    if (app->modal == SK_CON_MODAL_HELP)
        sk_con_view_help_draw(app, 1, rows - 3, cols,
                              app->under == SK_CON_MODAL_FORM ? SK_CON_IN_FORM : screens[app->screen]->where);
    draw_status(app, rows - 2, cols);
    draw_help_bar(modal_where(app), rows - 1, cols);
    if (app->cursor_y >= 0 && (app->modal == SK_CON_MODAL_FORM || app->modal == SK_CON_MODAL_PROMPT)) {
        curs_set(1);
        move(app->cursor_y, app->cursor_x);
    } else {
        curs_set(0);
    }
    refresh();
}

/* --- life cycle ---------------------------------------------------------------- */

int sk_con_app_init(struct sk_con_app *app, const struct sk_con_settings *settings, char *err, size_t errlen)
{
    memset(app, 0, sizeof(*app));
    app->settings = settings;
    app->order_status = -1;
    sk_con_model_init(&app->model);
    app->net = sk_con_net_new(settings->admin_url, settings->token, settings->timeout_ms, on_answer, app, err, errlen);
    if (app->net == NULL) {
        sk_con_model_free(&app->model);
        return SK_ERR;
    }
    return SK_OK;
}

void sk_con_app_free(struct sk_con_app *app)
{
    sk_con_net_free(app->net);
    app->net = NULL;
    if (form_open(app))
        sk_con_form_free(&app->form);
    sk_con_model_free(&app->model);
}

void sk_con_app_run(struct sk_con_app *app)
{
    sk_con_app_say(app, 0, "connecting to %s", app->settings->admin_url);
    while (!app->quit) {
        int64_t now = sk_mono_ms();
        /* The list feeds every screen (live picks the running activity from it). */
        sk_con_app_fetch_every(app, SK_CON_RES_ACTIVITIES, now, app->screen == SK_CON_SCR_ACTIVITIES ? 2000 : 5000);
        if (screens[app->screen]->tick != NULL)
            screens[app->screen]->tick(app, now);
        draw(app);
        sk_con_net_wait(app->net, STDIN_FILENO, TICK_MS);
        sk_con_net_run(app->net);
        for (int key = sk_con_ui_key(); key != SK_CON_KEY_NONE && !app->quit; key = sk_con_ui_key())
            on_key(app, key);
    }
}
