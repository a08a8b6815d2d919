/* The activities screen: the list, the selected one's schedule and items, and the
 * actions on it (new, edit, publish now or at a time, cancel, delete). */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "view.h"

#define ACT_SCREEN (&app->cur[SK_CON_SCR_ACTIVITIES])

static enum sk_con_role state_role(enum sk_con_act_state s)
{
    switch (s) {
    case SK_CON_ACT_RUNNING:
        return SK_CON_R_OK;
    case SK_CON_ACT_SCHEDULED:
    case SK_CON_ACT_PUBLISHED:
        return SK_CON_R_WARN;
    case SK_CON_ACT_ENDED:
    case SK_CON_ACT_CANCELLED:
        return SK_CON_R_DIM;
    default:
        return SK_CON_R_NORMAL;
    }
}

/* "start in 4m59s", "ended", "not published". */
static void next_text(const struct sk_con_activity *a, int64_t now, char *buf, size_t len)
{
    const char *what;
    int64_t at;
    char cd[SK_CON_FMT_LEN];
    if (sk_con_activity_next_event(a, now, &what, &at))
        snprintf(buf, len, "%s %s", what, sk_con_fmt_countdown(at, now, cd, sizeof(cd)));
    else if (a->state == SK_CON_ACT_DRAFT)
        snprintf(buf, len, "not published");
    else
        snprintf(buf, len, "%s", a->state == SK_CON_ACT_ENDED ? "ended" : "-");
}

static const struct sk_con_activity *selected(struct sk_con_app *app)
{
    const struct sk_con_activity_list *l = &app->model.activities;
    long s = ACT_SCREEN->sel;
    return s >= 0 && (size_t)s < l->n ? &l->v[s] : NULL;
}

/* Columns of the list for a terminal `cols` wide, each with its gap on the right;
 * wide terminals also show publish_at and ends_at. */
struct layout {
    int id, name, state, publish, starts, ends, next;
};

static void lay_out(int cols, struct layout *L)
{
    L->id = 6;
    L->state = 10;
    L->starts = 15;
    L->next = 24;
    L->publish = L->ends = 0;
    if (cols >= 120)
        L->publish = L->ends = 15;
    L->name = cols - (L->id + L->state + L->starts + L->next + L->publish + L->ends);
}

/* One cell of a row: the text in width - 1 columns, then the gap; moves *x on. */
static void cell(int y, int *x, int width, enum sk_con_role role, const char *text)
{
    sk_con_ui_text(y, *x, width - 1, role, 1, text);
    sk_con_ui_text(y, *x + width - 1, 1, role, 1, "");
    *x += width;
}

static void draw_schedule_line(int y, int cols, const char *label, int64_t at, int64_t now)
{
    char t[SK_CON_FMT_LEN], cd[SK_CON_FMT_LEN];
    if (at < 0) {
        sk_con_ui_textf(y, 2, cols - 2, SK_CON_R_DIM, 0, "%-8s -  (set when you publish)", label);
        return;
    }
    sk_con_ui_textf(y, 2, cols - 2, SK_CON_R_NORMAL, 0, "%-8s %s  %s", label,
                    sk_con_fmt_time(at, SK_CON_TIME_FULL, t, sizeof(t)), sk_con_fmt_countdown(at, now, cd, sizeof(cd)));
}

static void draw_detail(const struct sk_con_activity *a, int top, int rows, int cols, int64_t now)
{
    char m[SK_CON_FMT_LEN], p1[SK_CON_FMT_LEN], p2[SK_CON_FMT_LEN];
    int y = top;
    sk_con_ui_textf(y++, 0, cols, SK_CON_R_HEADER, 1, " Activity %llu · %s · %s", (unsigned long long)a->id, a->name,
                    sk_con_act_state_name(a->state));
    if (rows < 5)
        return;
    draw_schedule_line(y++, cols, "Publish", a->publish_at, now);
    draw_schedule_line(y++, cols, "Start", a->starts_at, now);
    draw_schedule_line(y++, cols, "End", a->ends_at, now);
    int tw = cols - 2 - 16 - 12 - 12 - 10 - 6;
    sk_con_ui_textf(y, 2, 16, SK_CON_R_DIM, 1, "SKU");
    sk_con_ui_textf(y, 18, tw, SK_CON_R_DIM, 1, "Title");
    sk_con_ui_textf(y++, 18 + tw, cols - 18 - tw, SK_CON_R_DIM, 0, "%11s %11s %9s %5s", "Seckill", "Price", "Stock",
                    "Limit");
    for (size_t i = 0; i < a->n_items && y < top + rows; i++, y++) {
        const struct sk_con_item *it = &a->items[i];
        if (y == top + rows - 1 && i + 1 < a->n_items) {
            sk_con_ui_textf(y, 2, cols - 2, SK_CON_R_DIM, 0, "… and %zu more (e to see them all)", a->n_items - i);
            break;
        }
        sk_con_ui_text(y, 2, 16, SK_CON_R_NORMAL, 1, it->sku);
        sk_con_ui_text(y, 18, tw, SK_CON_R_NORMAL, 1, it->title);
        sk_con_str_right(sk_con_fmt_money(it->seckill_price_cents, m, sizeof(m)), 11, p1, sizeof(p1));
        sk_con_str_right(sk_con_fmt_money(it->price_cents, m, sizeof(m)), 11, p2, sizeof(p2));
        sk_con_ui_textf(y, 18 + tw, cols - 18 - tw, SK_CON_R_NORMAL, 0, "%s %s %9lld %5lld", p1, p2,
                        (long long)it->stock, (long long)it->per_user_limit);
    }
}

static void draw(struct sk_con_app *app, int top, int rows, int cols)
{
    const struct sk_con_activity_list *l = &app->model.activities;
    int64_t now = sk_now_ms();
    struct layout L;
    char t[SK_CON_FMT_LEN], nx[SK_CON_FMT_LEN * 2];

    if (sk_con_view_res_state(&app->model.res[SK_CON_RES_ACTIVITIES], top, rows, cols, "activities"))
        return;
    if (l->n == 0) {
        sk_con_view_message(top, rows, cols, SK_CON_R_NORMAL, "No activities yet: press n to create one.");
        return;
    }
    const struct sk_con_activity *sel = selected(app);
    int detail = 0;
    if (rows >= 14 && sel != NULL) {
        detail = 5 + (int)sel->n_items;
        if (detail > rows / 2)
            detail = rows / 2;
    }
    int list_rows = rows - 1 - detail;
    app->page_rows = list_rows;
    sk_con_cursor_clamp(ACT_SCREEN, (long)l->n, list_rows);
    sel = selected(app);

    lay_out(cols, &L);
    int x = 0;
    sk_con_ui_fill(top, 0, cols, SK_CON_R_HEADER, ' ');
    cell(top, &x, L.id, SK_CON_R_HEADER, "   ID");
    cell(top, &x, L.name, SK_CON_R_HEADER, "Name");
    cell(top, &x, L.state, SK_CON_R_HEADER, "State");
    if (L.publish)
        cell(top, &x, L.publish, SK_CON_R_HEADER, "Publish (UTC)");
    cell(top, &x, L.starts, SK_CON_R_HEADER, "Starts (UTC)");
    if (L.ends)
        cell(top, &x, L.ends, SK_CON_R_HEADER, "Ends (UTC)");
    cell(top, &x, L.next, SK_CON_R_HEADER, "Next");

    for (int r = 0; r < list_rows; r++) {
        long i = ACT_SCREEN->top + r;
        if (i >= (long)l->n)
            break;
        const struct sk_con_activity *a = &l->v[i];
        int y = top + 1 + r, on = i == ACT_SCREEN->sel;
        enum sk_con_role base = on ? SK_CON_R_SELECTED : SK_CON_R_NORMAL;
        sk_con_view_row_bg(y, cols, on);
        x = 0;
        snprintf(nx, sizeof(nx), "%5llu", (unsigned long long)a->id);
        cell(y, &x, L.id, base, nx);
        cell(y, &x, L.name, base, a->name);
        cell(y, &x, L.state, on ? base : state_role(a->state), sk_con_act_state_name(a->state));
        if (L.publish)
            cell(y, &x, L.publish, base, sk_con_fmt_time(a->publish_at, SK_CON_TIME_SHORT, t, sizeof(t)));
        cell(y, &x, L.starts, base, sk_con_fmt_time(a->starts_at, SK_CON_TIME_SHORT, t, sizeof(t)));
        if (L.ends)
            cell(y, &x, L.ends, base, sk_con_fmt_time(a->ends_at, SK_CON_TIME_SHORT, t, sizeof(t)));
        next_text(a, now, nx, sizeof(nx));
        cell(y, &x, L.next, base, nx);
    }
    if (detail > 0 && sel != NULL)
        draw_detail(sel, top + rows - detail, detail, cols, now);
}

/* Refuse, in the status line, an action the activity's state does not allow. */
static int allowed(struct sk_con_app *app, const struct sk_con_activity *a, int ok, const char *why)
{
    if (!ok)
        sk_con_app_say(app, 1, "activity %llu is %s: %s", (unsigned long long)a->id, sk_con_act_state_name(a->state),
                       why);
    return ok;
}

static enum sk_con_handled action(struct sk_con_app *app, enum sk_con_action act)
{
    const struct sk_con_activity *a = selected(app);
    struct sk_con_tag t = {0};
    char q[SK_CON_MSGLEN];

    if (sk_con_cursor_move(ACT_SCREEN, act, (long)app->model.activities.n, app->page_rows))
        return SK_CON_HANDLED;
    if (act == SK_CON_A_NEW) {
        sk_con_app_open_form(app, NULL);
        return SK_CON_HANDLED;
    }
    switch (act) {
    case SK_CON_A_EDIT:
    case SK_CON_A_DELETE:
    case SK_CON_A_PUBLISH_NOW:
    case SK_CON_A_PUBLISH_AT:
    case SK_CON_A_CANCEL_ACTIVITY:
    case SK_CON_A_LIVE_OF:
    case SK_CON_A_ORDERS_OF:
        if (a == NULL) {
            sk_con_app_say(app, 1, "no activity selected: press n to create one");
            return SK_CON_HANDLED;
        }
        break;
    default:
        return SK_CON_IGNORED;
    }
    t.id = a->id;
    switch (act) {
    case SK_CON_A_EDIT:
        if (allowed(app, a, sk_con_act_editable(a->state), "only draft and scheduled activities can be edited"))
            sk_con_app_open_form(app, a);
        break;
    case SK_CON_A_DELETE:
        if (!allowed(app, a, sk_con_act_editable(a->state), "only draft and scheduled activities can be deleted"))
            break;
        snprintf(q, sizeof(q), "Delete activity %llu \"%.60s\" (%s) for good?", (unsigned long long)a->id, a->name,
                 sk_con_act_state_name(a->state));
        sk_con_app_confirm(app, SK_CON_ASK_DELETE, &t, q);
        break;
    case SK_CON_A_PUBLISH_NOW:
        if (!allowed(app, a, sk_con_act_editable(a->state), "it is already published"))
            break;
        snprintf(q, sizeof(q), "Publish activity %llu \"%.60s\" now?", (unsigned long long)a->id, a->name);
        sk_con_app_confirm(app, SK_CON_ASK_PUBLISH_NOW, &t, q);
        break;
    case SK_CON_A_PUBLISH_AT:
        if (!allowed(app, a, sk_con_act_editable(a->state), "it is already published"))
            break;
        snprintf(q, sizeof(q),
                 "Publish activity %llu at (UTC, e.g. 2026-11-11 10:00; +10m; empty: now):", (unsigned long long)a->id);
        sk_con_app_prompt(app, SK_CON_ASK_PUBLISH_AT, &t, q, NULL);
        break;
    case SK_CON_A_CANCEL_ACTIVITY:
        if (!allowed(app, a, a->state != SK_CON_ACT_ENDED && a->state != SK_CON_ACT_CANCELLED,
                     "there is nothing left to cancel"))
            break;
        snprintf(q, sizeof(q), "Cancel activity %llu \"%.60s\" (%s)? Its sale stops at once.",
                 (unsigned long long)a->id, a->name, sk_con_act_state_name(a->state));
        sk_con_app_confirm(app, SK_CON_ASK_CANCEL, &t, q);
        break;
    case SK_CON_A_LIVE_OF:
        app->live_id = a->id;
        sk_con_app_show(app, SK_CON_SCR_LIVE);
        break;
    case SK_CON_A_ORDERS_OF:
        app->order_activity = a->id;
        app->cur[SK_CON_SCR_ORDERS].sel = 0;
        sk_con_app_show(app, SK_CON_SCR_ORDERS);
        break;
    default:
        break;
    }
    return SK_CON_HANDLED;
}

const struct sk_con_screen sk_con_view_activities = {
    .title = "Activities",
    .where = SK_CON_IN_ACTIVITIES,
    .draw = draw,
    .action = action,
    .tick = NULL, /* the app fetches the list for every screen */
};
