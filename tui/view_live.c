/* The live screen: the followed activity's stock per item (a bar of paid, reserved
 * and remaining units, reservations/s, sold-out) and the daemon's health, asked
 * for every second. */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "view.h"

#define LIVE_CUR (&app->cur[SK_CON_SCR_LIVE])
#define NUMS_W   49 /* " Initial  Reserved     Paid  Remaining    Res/s" */

/* The item's title from the activity (the stock answer has only the sku). */
static const char *item_title(const struct sk_con_activity *a, const struct sk_con_stock_item *it)
{
    for (size_t i = 0; a != NULL && i < a->n_items; i++)
        if (a->items[i].id == it->item_id)
            return a->items[i].title;
    return it->sku;
}

/* The daemon's figures in three lines that fit 80 columns; returns rows used. */
static int draw_daemon(struct sk_con_app *app, int y, int cols)
{
    const struct sk_con_res *r = &app->model.res[SK_CON_RES_STATS];
    const struct sk_con_stats *s = &app->model.stats;
    char d[SK_CON_FMT_LEN], rate[SK_CON_FMT_LEN], rrate[SK_CON_FMT_LEN], lag[32], line[512];
    int n, down;

    if (r->unavailable) {
        sk_con_ui_text(y, 1, cols - 1, SK_CON_R_WARN, 0, "Daemon: stats not available on this daemon");
        return 1;
    }
    if (!r->loaded) {
        sk_con_ui_textf(y, 1, cols - 1, r->err[0] ? SK_CON_R_ERROR : SK_CON_R_DIM, 0, "Daemon: %s",
                        r->err[0] ? r->err : "loading…");
        return 1;
    }
    sk_con_ui_textf(y, 1, cols - 1, SK_CON_R_NORMAL, 0, "Requests  %-9s p50 %.1f ms   p99 %.1f ms   reservations %s",
                    sk_con_fmt_rate(s->requests_per_s, rate, sizeof(rate)), s->latency_p50_ms, s->latency_p99_ms,
                    sk_con_fmt_rate(s->reservations_per_s, rrate, sizeof(rrate)));
    if (s->queue_lag >= 0)
        snprintf(lag, sizeof(lag), "%lld", (long long)s->queue_lag);
    else
        snprintf(lag, sizeof(lag), "-");
    n = snprintf(line, sizeof(line), "Queue lag %-13s up %-11s", lag,
                 sk_con_fmt_duration(s->uptime_s * 1000, d, sizeof(d)));
    for (size_t i = 0; i < s->n_plugins && n > 0 && (size_t)n < sizeof(line); i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s %s", i == 0 ? "" : " · ", s->plugins[i].name,
                      s->plugins[i].ready ? "ok" : "DOWN");
    if (s->mariadb >= 0 && n > 0 && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, "%smariadb %s", s->n_plugins ? " · " : "",
                 s->mariadb ? "ok" : "DOWN");
    down = s->mariadb == 0;
    for (size_t i = 0; i < s->n_plugins; i++)
        down |= !s->plugins[i].ready;
    sk_con_ui_text(y + 1, 1, cols - 1, down ? SK_CON_R_ERROR : SK_CON_R_NORMAL, 0, line);
    n = snprintf(line, sizeof(line), "Orders   ");
    for (int i = 0; i < SK_CON_ORD_COUNT && n > 0 && (size_t)n < sizeof(line); i++)
        if (s->orders_by_status[i] >= 0)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %lld", sk_con_ord_status_name(i),
                          (long long)s->orders_by_status[i]);
    sk_con_ui_text(y + 2, 1, cols - 1, SK_CON_R_NORMAL, 0, line);
    return 3;
}

static void draw_item(int y, int cols, const char *title, const struct sk_con_stock_item *it, int on)
{
    char num[5][SK_CON_FMT_LEN], rate[SK_CON_FMT_LEN];
    int cells[3];
    enum sk_con_role base = on ? SK_CON_R_SELECTED : SK_CON_R_NORMAL;
    int tw = cols - NUMS_W - 1;

    sk_con_view_row_bg(y, cols, on);
    sk_con_ui_text(y, 1, tw, base, 1, title);
    snprintf(num[0], sizeof(num[0]), "%lld", (long long)it->initial);
    snprintf(num[1], sizeof(num[1]), "%lld", (long long)it->reserved);
    snprintf(num[2], sizeof(num[2]), "%lld", (long long)it->paid);
    snprintf(num[3], sizeof(num[3]), "%lld", (long long)it->remaining);
    snprintf(num[4], sizeof(num[4]), "%s", it->has_rate ? sk_con_fmt_rate(it->rate, rate, sizeof(rate)) : "-");
    sk_con_ui_textf(y, 1 + tw, NUMS_W, base, 0, "%8s %9s %8s %10s %9s", num[0], num[1], num[2], num[3], num[4]);

    /* The bar: '#' paid, '=' reserved and unpaid, '.' remaining; characters as well
     * as colours, so a monochrome terminal shows the same. */
    const char *marker = "";
    enum sk_con_role mrole = SK_CON_R_NORMAL;
    if (it->initial > 0 && it->remaining == 0) {
        marker = "SOLD OUT";
        mrole = SK_CON_R_ERROR;
    } else if (strcmp(it->sale_state, "open") != 0) {
        marker = it->sale_state;
        mrole = SK_CON_R_WARN;
    }
    int bw = cols - 3 - 2 - 12;
    if (bw < 4)
        return;
    sk_con_stock_bar(it->initial, it->reserved, it->paid, bw, cells);
    int x = 3;
    sk_con_ui_text(y + 1, x++, 1, SK_CON_R_DIM, 0, "[");
    sk_con_ui_fill(y + 1, x, cells[0], SK_CON_R_BAR_PAID, '#');
    x += cells[0];
    sk_con_ui_fill(y + 1, x, cells[1], SK_CON_R_BAR_RESERVED, '=');
    x += cells[1];
    sk_con_ui_fill(y + 1, x, cells[2], SK_CON_R_BAR_FREE, '.');
    x += cells[2];
    sk_con_ui_text(y + 1, x++, 1, SK_CON_R_DIM, 0, "]");
    sk_con_ui_text(y + 1, x + 1, cols - x - 1, mrole, 0, marker);
}

static void draw(struct sk_con_app *app, int top, int rows, int cols)
{
    uint64_t id = sk_con_app_live_activity(app);
    const struct sk_con_activity *a = sk_con_model_activity(&app->model, id);
    const struct sk_con_stock *st = &app->model.stock;
    const struct sk_con_res *r = &app->model.res[SK_CON_RES_STOCK];
    int64_t now = sk_now_ms();
    char cd[SK_CON_FMT_LEN];
    const char *what;
    int64_t at;
    int y = top;

    if (id == 0) {
        y += draw_daemon(app, y, cols) + 1;
        sk_con_view_message(y, top + rows - y, cols, SK_CON_R_NORMAL,
                            "No activity is running or scheduled: choose one with l on the Activities screen.");
        return;
    }
    /* State and countdown before the name, so a long name cannot push them off. */
    if (a != NULL && sk_con_activity_next_event(a, now, &what, &at))
        sk_con_ui_textf(y, 0, cols, SK_CON_R_HEADER, 1, " Activity %llu · %s · %s %s · %s%s", (unsigned long long)id,
                        sk_con_act_state_name(a->state), what, sk_con_fmt_countdown(at, now, cd, sizeof(cd)), a->name,
                        app->live_id ? " (pinned: f follows the running one)" : "");
    else
        sk_con_ui_textf(y, 0, cols, SK_CON_R_HEADER, 1, " Activity %llu · %s · %s%s", (unsigned long long)id,
                        a != NULL ? sk_con_act_state_name(a->state) : "?", a != NULL ? a->name : "",
                        app->live_id ? " (pinned: f follows the running one)" : "");
    y++;
    y += draw_daemon(app, y, cols);
    y++;
    if (sk_con_view_res_state(r, y, top + rows - y, cols, "live stock"))
        return;
    if (st->activity_id != id) {
        sk_con_view_message(y, top + rows - y, cols, SK_CON_R_DIM, "live stock: loading…");
        return;
    }
    if (r->err[0] != '\0') /* data from before, and why it is not fresher */
        sk_con_ui_text(top + rows - 1, 1, cols - 1, SK_CON_R_ERROR, 0, r->err);
    int tw = cols - NUMS_W - 1;
    sk_con_ui_fill(y, 0, cols, SK_CON_R_HEADER, ' ');
    sk_con_ui_text(y, 1, tw, SK_CON_R_HEADER, 1, "Item");
    sk_con_ui_textf(y, 1 + tw, NUMS_W, SK_CON_R_HEADER, 0, "%8s %9s %8s %10s %9s", "Initial", "Reserved", "Paid",
                    "Remaining", "Res/s");
    y++;
    int slots = (top + rows - y - (r->err[0] ? 1 : 0)) / 2;
    if (slots < 1)
        slots = 1;
    app->page_rows = slots;
    sk_con_cursor_clamp(LIVE_CUR, (long)st->n, slots);
    if (st->n == 0) {
        sk_con_ui_text(y, 1, cols - 1, SK_CON_R_DIM, 0, "no items");
        return;
    }
    for (int s = 0; s < slots; s++) {
        long i = LIVE_CUR->top + s;
        if (i >= (long)st->n || y + 1 >= top + rows)
            break;
        draw_item(y, cols, item_title(a, &st->items[i]), &st->items[i], st->n > 1 && i == LIVE_CUR->sel);
        y += 2;
    }
}

static enum sk_con_handled action(struct sk_con_app *app, enum sk_con_action act)
{
    if (sk_con_cursor_move(LIVE_CUR, act, (long)app->model.stock.n, app->page_rows))
        return SK_CON_HANDLED;
    if (act == SK_CON_A_FOLLOW_RUNNING) {
        app->live_id = 0;
        sk_con_app_fetch_soon(app, SK_CON_RES_STOCK);
        sk_con_app_say(app, 0, "following the running activity");
        return SK_CON_HANDLED;
    }
    return SK_CON_IGNORED;
}

static void tick(struct sk_con_app *app, int64_t now_mono_ms)
{
    sk_con_app_fetch_every(app, SK_CON_RES_STOCK, now_mono_ms, 1000);
    sk_con_app_fetch_every(app, SK_CON_RES_STATS, now_mono_ms, 1000);
}

const struct sk_con_screen sk_con_view_live = {
    .title = "Live",
    .where = SK_CON_IN_LIVE,
    .draw = draw,
    .action = action,
    .tick = tick,
};
