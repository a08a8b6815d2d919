/* The activity form: four head fields and a table of items, one row each. The
 * form's text, focus and validation live in form.c; this only draws. */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "view.h"

#define LABEL_W 12
#define TIME_W  21

static const char *const head_labels[SK_CON_F_HEAD_COUNT] = {"Name", "Publish at", "Starts at", "Ends at"};
static const char *const head_hints[SK_CON_F_HEAD_COUNT] = {"", "empty: when you publish",
                                                            "UTC: 2026-11-11 10:00, +10m, now", "after the start"};

/* Item columns: widths for a terminal `cols` wide; the title takes the rest. */
static void item_widths(int cols, int w[SK_CON_FI_COUNT])
{
    w[SK_CON_FI_SKU] = 12;
    w[SK_CON_FI_PRICE] = 10;
    w[SK_CON_FI_SECKILL] = 10;
    w[SK_CON_FI_STOCK] = 9;
    w[SK_CON_FI_LIMIT] = 5;
    w[SK_CON_FI_TITLE] = cols - 4 - (12 + 10 + 10 + 9 + 5) - 6;
}

void sk_con_view_form_draw(struct sk_con_app *app, int top, int rows, int cols)
{
    struct sk_con_form *f = &app->form;
    int w[SK_CON_FI_COUNT], y = top, col;
    long focus_item = sk_con_form_locate(f, f->focus, &col);
    static const char *const col_names[SK_CON_FI_COUNT] = {"SKU", "Title", "Price ¥", "Seckill ¥", "Stock", "Limit"};

    if (f->activity_id == 0)
        sk_con_ui_text(y++, 0, cols, SK_CON_R_HEADER, 1, " New activity");
    else
        sk_con_ui_textf(y++, 0, cols, SK_CON_R_HEADER, 1, " Edit activity %llu", (unsigned long long)f->activity_id);
    for (int h = 0; h < SK_CON_F_HEAD_COUNT; h++, y++) {
        int on = focus_item < 0 && col == h;
        int fw = h == SK_CON_F_NAME ? cols - LABEL_W - 3 : TIME_W;
        sk_con_ui_text(y, 1, LABEL_W, on ? SK_CON_R_WARN : SK_CON_R_NORMAL, 1, head_labels[h]);
        sk_con_view_field(y, 1 + LABEL_W, fw, &f->head[h], on, &app->cursor_y, &app->cursor_x);
        if (h != SK_CON_F_NAME)
            sk_con_ui_text(y, 2 + LABEL_W + fw, cols - 3 - LABEL_W - fw, SK_CON_R_DIM, 0, head_hints[h]);
    }
    y++;
    item_widths(cols, w);
    int x = 1;
    sk_con_ui_fill(y, 0, cols, SK_CON_R_HEADER, ' ');
    x += sk_con_ui_text(y, x, 4, SK_CON_R_HEADER, 1, "  #");
    for (int c = 0; c < SK_CON_FI_COUNT; c++)
        x += sk_con_ui_text(y, x, w[c], SK_CON_R_HEADER, 1, col_names[c]) + 1;
    y++;
    int slots = top + rows - y;
    if (slots < 1)
        return;
    /* Scroll so that the focused item shows. */
    long first = app->form_top;
    long want = focus_item < 0 ? 0 : focus_item;
    if (want < first)
        first = want;
    if (want >= first + slots)
        first = want - slots + 1;
    if (first > (long)f->n_items - slots)
        first = (long)f->n_items - slots;
    if (first < 0)
        first = 0;
    app->form_top = first;
    for (int s = 0; s < slots; s++) {
        long i = first + s;
        if (i >= (long)f->n_items)
            break;
        x = 1;
        x += sk_con_ui_textf(y + s, x, 4, i == focus_item ? SK_CON_R_WARN : SK_CON_R_NORMAL, 1, "%3ld", i + 1);
        for (int c = 0; c < SK_CON_FI_COUNT; c++) {
            sk_con_view_field(y + s, x, w[c], &f->items[i].f[c], i == focus_item && c == col, &app->cursor_y,
                              &app->cursor_x);
            x += w[c] + 1;
        }
    }
}
