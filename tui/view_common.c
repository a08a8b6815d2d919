/* Drawing shared by the views, and the help; see view.h. */
#include "view.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "keys.h"

void sk_con_view_field(int y, int x, int width, const struct sk_con_field *fl, int focused, int *cy, int *cx)
{
    char part[SK_CON_FIELD_SIZE];
    if (width <= 0)
        return;
    size_t start = focused ? sk_con_field_view_start(fl, width) : 0;
    sk_con_ui_text(y, x, width, focused ? SK_CON_R_FIELD_ON : SK_CON_R_FIELD, 1, fl->text + start);
    if (focused) {
        memcpy(part, fl->text + start, fl->cur - start);
        part[fl->cur - start] = '\0';
        *cy = y;
        *cx = x + sk_con_str_width(part);
    }
}

void sk_con_view_message(int top, int rows, int cols, enum sk_con_role role, const char *text)
{
    int w = sk_con_str_width(text);
    if (w > cols - 2)
        w = cols - 2;
    sk_con_ui_text(top + rows / 2, (cols - w) / 2, cols - 2, role, 0, text);
}

int sk_con_view_res_state(const struct sk_con_res *r, int top, int rows, int cols, const char *what)
{
    char msg[SK_CON_MSGLEN + 64];
    if (r->unavailable) {
        snprintf(msg, sizeof(msg), "%s: not available on this daemon", what);
        sk_con_view_message(top, rows, cols, SK_CON_R_WARN, msg);
        return 1;
    }
    if (r->loaded)
        return 0;
    if (r->err[0] != '\0') {
        snprintf(msg, sizeof(msg), "%s: %s", what, r->err);
        sk_con_view_message(top, rows, cols, SK_CON_R_ERROR, msg);
    } else {
        snprintf(msg, sizeof(msg), "%s: loading…", what);
        sk_con_view_message(top, rows, cols, SK_CON_R_DIM, msg);
    }
    return 1;
}

void sk_con_view_row_bg(int y, int cols, int selected)
{
    if (selected)
        sk_con_ui_fill(y, 0, cols, SK_CON_R_SELECTED, ' ');
}

/* --- help ---------------------------------------------------------------------- */

struct help_entry {
    enum sk_con_action action;
    char keys[24];
    const char *help;
};

void sk_con_view_help_draw(struct sk_con_app *app, int top, int rows, int cols, unsigned where)
{
    struct help_entry e[64];
    size_t n = 0;
    (void)app;

    /* One entry per action, with every key that does it: "Down/j". */
    for (size_t i = 0; i < sk_con_bindings_count; i++) {
        const struct sk_con_binding *b = &sk_con_bindings[i];
        size_t j;
        if (!(b->where & where))
            continue;
        for (j = 0; j < n && e[j].action != b->action; j++)
            ;
        if (j < n) {
            size_t len = strlen(e[j].keys);
            if (len + 1 + strlen(b->key_name) < sizeof(e[j].keys))
                snprintf(e[j].keys + len, sizeof(e[j].keys) - len, "/%s", b->key_name);
            continue;
        }
        if (n == sizeof(e) / sizeof(e[0]))
            break;
        e[n].action = b->action;
        snprintf(e[n].keys, sizeof(e[n].keys), "%s", b->key_name);
        e[n].help = b->help;
        n++;
    }

    for (int y = top; y < top + rows; y++)
        sk_con_ui_fill(y, 0, cols, SK_CON_R_NORMAL, ' ');
    sk_con_ui_text(top, 1, cols - 2, SK_CON_R_HEADER, 1,
                   where & SK_CON_IN_FORM ? "Keys of the form (times are UTC; +10m and now work too)"
                                          : "Keys (times are UTC)");
    int avail = rows - 2;
    if (avail < 1)
        return;
    int ncol = (int)n > avail ? 2 : 1;
    int colw = (cols - 2) / ncol;
    int keyw = 0;
    for (size_t i = 0; i < n; i++)
        if (sk_con_str_width(e[i].keys) > keyw)
            keyw = sk_con_str_width(e[i].keys);
    keyw += 2;
    for (size_t i = 0; i < n; i++) {
        int c = (int)i / avail, r = (int)i % avail;
        if (c >= ncol)
            break;
        int x = 1 + c * colw;
        sk_con_ui_text(top + 1 + r, x, keyw, SK_CON_R_KEY, 0, e[i].keys);
        sk_con_ui_text(top + 1 + r, x + keyw, colw - keyw - 1, SK_CON_R_NORMAL, 0, e[i].help);
    }
    sk_con_ui_text(top + rows - 1, 1, cols - 2, SK_CON_R_DIM, 0, "any key closes this help");
}
