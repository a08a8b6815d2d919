/* The blacklist screen: blacklisted users, add one, take one off. */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "view.h"

#define BL_CUR (&app->cur[SK_CON_SCR_BLACKLIST])

static void draw(struct sk_con_app *app, int top, int rows, int cols)
{
    const struct sk_con_blacklist *l = &app->model.blacklist;
    char t[SK_CON_FMT_LEN];

    if (sk_con_view_res_state(&app->model.res[SK_CON_RES_BLACKLIST], top, rows, cols, "blacklist"))
        return;
    sk_con_ui_fill(top, 0, cols, SK_CON_R_HEADER, ' ');
    sk_con_ui_textf(top, 1, cols - 1, SK_CON_R_HEADER, 0, "%12s  %-21s %s", "User id", "Added (UTC)", "Reason");
    if (l->n == 0) {
        sk_con_view_message(top + 1, rows - 1, cols, SK_CON_R_DIM, "nobody is blacklisted: a adds a user");
        return;
    }
    int list_rows = rows - 1;
    app->page_rows = list_rows;
    sk_con_cursor_clamp(BL_CUR, (long)l->n, list_rows);
    for (int i = 0; i < list_rows; i++) {
        long k = BL_CUR->top + i;
        if (k >= (long)l->n)
            break;
        const struct sk_con_bl_entry *e = &l->v[k];
        int y = top + 1 + i, on = k == BL_CUR->sel;
        enum sk_con_role base = on ? SK_CON_R_SELECTED : SK_CON_R_NORMAL;
        sk_con_view_row_bg(y, cols, on);
        int x = 1 + sk_con_ui_textf(y, 1, cols - 1, base, 0, "%12llu  %-21s ", (unsigned long long)e->user_id,
                                    sk_con_fmt_time(e->added_at, SK_CON_TIME_FULL, t, sizeof(t)));
        sk_con_ui_text(y, x, cols - x, base, 0, e->reason);
    }
}

static enum sk_con_handled action(struct sk_con_app *app, enum sk_con_action act)
{
    const struct sk_con_blacklist *l = &app->model.blacklist;
    struct sk_con_tag t = {0};
    char q[SK_CON_MSGLEN];

    if (sk_con_cursor_move(BL_CUR, act, (long)l->n, app->page_rows))
        return SK_CON_HANDLED;
    switch (act) {
    case SK_CON_A_BL_ADD:
        if (app->model.res[SK_CON_RES_BLACKLIST].unavailable) {
            sk_con_app_say(app, 1, "blacklist: not available on this daemon");
            return SK_CON_HANDLED;
        }
        sk_con_app_prompt(app, SK_CON_ASK_BL_USER, &t, "Blacklist user id:", NULL);
        return SK_CON_HANDLED;
    case SK_CON_A_BL_REMOVE:
        if (BL_CUR->sel < 0 || (size_t)BL_CUR->sel >= l->n) {
            sk_con_app_say(app, 1, "no user selected");
            return SK_CON_HANDLED;
        }
        t.id = l->v[BL_CUR->sel].user_id;
        snprintf(q, sizeof(q), "Take user %llu off the blacklist?", (unsigned long long)t.id);
        sk_con_app_confirm(app, SK_CON_ASK_BL_REMOVE, &t, q);
        return SK_CON_HANDLED;
    default:
        return SK_CON_IGNORED;
    }
}

static void tick(struct sk_con_app *app, int64_t now_mono_ms)
{
    sk_con_app_fetch_every(app, SK_CON_RES_BLACKLIST, now_mono_ms, 10000);
}

const struct sk_con_screen sk_con_view_blacklist = {
    .title = "Blacklist",
    .where = SK_CON_IN_BLACKLIST,
    .draw = draw,
    .action = action,
    .tick = tick,
};
