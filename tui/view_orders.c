/* The orders screen: orders by status with the time each has left before it times
 * out, filtered by status and activity; an open order can be closed by hand. */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "view.h"

#define ORD_CUR (&app->cur[SK_CON_SCR_ORDERS])
#define REST_W  49 /* the columns after the order number */

static enum sk_con_role status_role(enum sk_con_ord_status s)
{
    switch (s) {
    case SK_CON_ORD_PAID:
        return SK_CON_R_OK;
    case SK_CON_ORD_CLOSED:
        return SK_CON_R_DIM;
    default:
        return SK_CON_R_WARN;
    }
}

static const struct sk_con_order *selected(struct sk_con_app *app)
{
    long s = ORD_CUR->sel;
    return s >= 0 && (size_t)s < app->model.orders.n ? &app->model.orders.v[s] : NULL;
}

static void draw(struct sk_con_app *app, int top, int rows, int cols)
{
    const struct sk_con_order_list *l = &app->model.orders;
    const struct sk_con_res *r = &app->model.res[SK_CON_RES_ORDERS];
    int64_t now = sk_now_ms();
    char act[32], m[SK_CON_FMT_LEN], amount[SK_CON_FMT_LEN], left[SK_CON_FMT_LEN];

    if (app->order_activity)
        snprintf(act, sizeof(act), "%llu", (unsigned long long)app->order_activity);
    else
        snprintf(act, sizeof(act), "all");
    if (r->loaded && !r->unavailable)
        sk_con_ui_textf(top, 1, cols - 1, SK_CON_R_NORMAL, 0, "Status: %s   Activity: %s   %zu order%s%s",
                        app->order_status < 0 ? "all" : sk_con_ord_status_name(app->order_status), act, l->n,
                        l->n == 1 ? "" : "s", l->n >= 100 ? " (the first 100)" : "");
    else
        sk_con_ui_textf(top, 1, cols - 1, SK_CON_R_NORMAL, 0, "Status: %s   Activity: %s",
                        app->order_status < 0 ? "all" : sk_con_ord_status_name(app->order_status), act);
    top++;
    rows--;
    if (sk_con_view_res_state(r, top, rows, cols, "orders"))
        return;
    int ow = cols - REST_W - 1;
    sk_con_ui_fill(top, 0, cols, SK_CON_R_HEADER, ' ');
    sk_con_ui_text(top, 1, ow, SK_CON_R_HEADER, 1, "Order no");
    sk_con_ui_textf(top, 1 + ow, REST_W, SK_CON_R_HEADER, 0, "%4s %5s %8s %-8s %10s %9s", "Act", "Item", "User",
                    "Status", "Amount", "Time left");
    if (l->n == 0) {
        sk_con_view_message(top + 1, rows - 1, cols, SK_CON_R_DIM, "no orders match");
        return;
    }
    int list_rows = rows - 1;
    app->page_rows = list_rows;
    sk_con_cursor_clamp(ORD_CUR, (long)l->n, list_rows);
    for (int i = 0; i < list_rows; i++) {
        long k = ORD_CUR->top + i;
        if (k >= (long)l->n)
            break;
        const struct sk_con_order *o = &l->v[k];
        int y = top + 1 + i, on = k == ORD_CUR->sel;
        enum sk_con_role base = on ? SK_CON_R_SELECTED : SK_CON_R_NORMAL;
        sk_con_view_row_bg(y, cols, on);
        sk_con_ui_text(y, 1, ow, base, 1, o->order_no);
        sk_con_str_right(sk_con_fmt_money(o->amount_cents, m, sizeof(m)), 10, amount, sizeof(amount));
        int x = 1 + ow;
        x += sk_con_ui_textf(y, x, 20, base, 0, "%4llu %5llu %8llu ", (unsigned long long)o->activity_id,
                             (unsigned long long)o->item_id, (unsigned long long)o->user_id);
        x += sk_con_ui_text(y, x, 9, on ? base : status_role(o->status), 1, sk_con_ord_status_name(o->status));
        x += sk_con_ui_text(y, x, 10, base, 0, amount) + 1;
        sk_con_order_time_left(o, now, left, sizeof(left));
        enum sk_con_role lr = base;
        if (!on && sk_con_order_open(o->status) && o->expires_at >= 0 && o->expires_at - now < 60000)
            lr = SK_CON_R_ERROR; /* about to time out, or past it */
        sk_con_str_right(left, 9, m, sizeof(m));
        sk_con_ui_text(y, x, 9, lr, 0, m);
    }
}

static enum sk_con_handled action(struct sk_con_app *app, enum sk_con_action act)
{
    const struct sk_con_order *o = selected(app);
    struct sk_con_tag t = {0};
    char q[SK_CON_MSGLEN], m[SK_CON_FMT_LEN], initial[32];

    if (sk_con_cursor_move(ORD_CUR, act, (long)app->model.orders.n, app->page_rows))
        return SK_CON_HANDLED;
    switch (act) {
    case SK_CON_A_FILTER_STATUS:
        /* all → reserved → created → paying → paid → closed → all */
        app->order_status = app->order_status + 1 >= SK_CON_ORD_COUNT ? -1 : app->order_status + 1;
        ORD_CUR->sel = ORD_CUR->top = 0;
        sk_con_app_fetch_soon(app, SK_CON_RES_ORDERS);
        return SK_CON_HANDLED;
    case SK_CON_A_FILTER_ACTIVITY:
        initial[0] = '\0';
        if (app->order_activity)
            snprintf(initial, sizeof(initial), "%llu", (unsigned long long)app->order_activity);
        sk_con_app_prompt(app, SK_CON_ASK_ORDER_ACTIVITY, &t, "Orders of activity id (empty: all):", initial);
        return SK_CON_HANDLED;
    case SK_CON_A_CLOSE_ORDER:
        if (o == NULL) {
            sk_con_app_say(app, 1, "no order selected");
        } else if (!sk_con_order_open(o->status)) {
            sk_con_app_say(app, 1, "order %s is %s: only reserved, created and paying orders can be closed",
                           o->order_no, sk_con_ord_status_name(o->status));
        } else {
            snprintf(t.text, sizeof(t.text), "%s", o->order_no);
            snprintf(q, sizeof(q), "Close order %s (user %llu, %s) by hand?", o->order_no,
                     (unsigned long long)o->user_id, sk_con_fmt_money(o->amount_cents, m, sizeof(m)));
            sk_con_app_confirm(app, SK_CON_ASK_CLOSE_ORDER, &t, q);
        }
        return SK_CON_HANDLED;
    default:
        return SK_CON_IGNORED;
    }
}

static void tick(struct sk_con_app *app, int64_t now_mono_ms)
{
    sk_con_app_fetch_every(app, SK_CON_RES_ORDERS, now_mono_ms, 2000);
}

const struct sk_con_screen sk_con_view_orders = {
    .title = "Orders",
    .where = SK_CON_IN_ORDERS,
    .draw = draw,
    .action = action,
    .tick = tick,
};
