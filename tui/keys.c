/* The key-binding table; see keys.h. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include "format.h"

#define SCREENS SK_CON_IN_SCREENS
#define ACTS    SK_CON_IN_ACTIVITIES
#define LIVE    SK_CON_IN_LIVE
#define ORDERS  SK_CON_IN_ORDERS
#define BL      SK_CON_IN_BLACKLIST
#define FORM    SK_CON_IN_FORM
#define PROMPT  SK_CON_IN_PROMPT
#define EDITS   (SK_CON_IN_FORM | SK_CON_IN_PROMPT)
#define CONFIRM SK_CON_IN_CONFIRM
#define HELP    SK_CON_IN_HELP

/* Order matters twice: the first binding of a key in a place wins, and the help bar
 * shows entries in this order until the width runs out. */
const struct sk_con_binding sk_con_bindings[] = {
    /* the form: save and leave first, so they always fit in the bar */
    {FORM, SK_CON_KEY_F2, "F2", SK_CON_A_SAVE, "Save", "save the activity", 1},
    {FORM, SK_CON_CTRL('s'), "^S", SK_CON_A_SAVE, "Save", "save the activity", 0},
    {FORM, SK_CON_KEY_ESC, "Esc", SK_CON_A_DISCARD, "Cancel", "leave without saving", 1},
    {FORM, SK_CON_KEY_TAB, "Tab", SK_CON_A_NEXT_FIELD, "Next", "next field", 1},
    {FORM, SK_CON_KEY_BTAB, "S-Tab", SK_CON_A_PREV_FIELD, "Prev", "previous field", 1},
    {FORM, SK_CON_KEY_DOWN, "Down", SK_CON_A_NEXT_FIELD, "Next", "next field", 0},
    {FORM, SK_CON_KEY_UP, "Up", SK_CON_A_PREV_FIELD, "Prev", "previous field", 0},
    {FORM, SK_CON_KEY_ENTER, "Enter", SK_CON_A_NEXT_FIELD, "Next", "next field", 0},
    {FORM, SK_CON_KEY_F5, "F5", SK_CON_A_ADD_ITEM, "Add item", "add an item after this one", 1},
    {FORM, SK_CON_CTRL('n'), "^N", SK_CON_A_ADD_ITEM, "Add item", "add an item", 0},
    {FORM, SK_CON_KEY_F8, "F8", SK_CON_A_REMOVE_ITEM, "Del item", "remove this item", 1},
    {FORM, SK_CON_CTRL('d'), "^D", SK_CON_A_REMOVE_ITEM, "Del item", "remove this item", 0},
    {FORM, SK_CON_KEY_F1, "F1", SK_CON_A_HELP, "Help", "these keys", 1},

    /* the prompt line */
    {PROMPT, SK_CON_KEY_ENTER, "Enter", SK_CON_A_ACCEPT, "OK", "accept", 1},
    {PROMPT, SK_CON_KEY_ESC, "Esc", SK_CON_A_DISCARD, "Cancel", "cancel", 1},

    /* editing text, in the form and the prompt */
    {EDITS, SK_CON_KEY_LEFT, "Left", SK_CON_A_CURSOR_LEFT, "", "cursor left", 0},
    {EDITS, SK_CON_KEY_RIGHT, "Right", SK_CON_A_CURSOR_RIGHT, "", "cursor right", 0},
    {EDITS, SK_CON_KEY_HOME, "Home", SK_CON_A_CURSOR_HOME, "", "start of the field", 0},
    {EDITS, SK_CON_CTRL('a'), "^A", SK_CON_A_CURSOR_HOME, "", "start of the field", 0},
    {EDITS, SK_CON_KEY_END, "End", SK_CON_A_CURSOR_END, "", "end of the field", 0},
    {EDITS, SK_CON_CTRL('e'), "^E", SK_CON_A_CURSOR_END, "", "end of the field", 0},
    {EDITS, SK_CON_KEY_BACKSPACE, "Bksp", SK_CON_A_ERASE_BACK, "", "erase before the cursor", 0},
    {EDITS, SK_CON_KEY_DELETE, "Del", SK_CON_A_ERASE_FORWARD, "", "erase at the cursor", 0},

    /* confirmation */
    {CONFIRM, 'y', "y", SK_CON_A_YES, "Yes", "do it", 1},
    {CONFIRM, 'Y', "Y", SK_CON_A_YES, "Yes", "do it", 0},
    {CONFIRM, 'n', "n", SK_CON_A_NO, "No", "do not", 1},
    {CONFIRM, 'N', "N", SK_CON_A_NO, "No", "do not", 0},
    {CONFIRM, SK_CON_KEY_ESC, "Esc", SK_CON_A_NO, "No", "do not", 0},

    /* help */
    {HELP, SK_CON_KEY_ESC, "Esc", SK_CON_A_CLOSE_HELP, "Close", "close the help", 1},

    /* every screen: leaving and help first */
    {SCREENS, '?', "?", SK_CON_A_HELP, "Help", "this help", 1},
    {SCREENS, SK_CON_KEY_F1, "F1", SK_CON_A_HELP, "Help", "this help", 0},
    {SCREENS, 'q', "q", SK_CON_A_QUIT, "Quit", "leave the console", 1},
    {SCREENS, SK_CON_KEY_F10, "F10", SK_CON_A_QUIT, "Quit", "leave the console", 0},
    {SCREENS, SK_CON_CTRL('c'), "^C", SK_CON_A_QUIT, "Quit", "leave the console", 0},

    /* activities */
    {ACTS, 'n', "n", SK_CON_A_NEW, "New", "create an activity", 1},
    {ACTS, 'e', "e", SK_CON_A_EDIT, "Edit", "edit (draft, scheduled)", 1},
    {ACTS, SK_CON_KEY_ENTER, "Enter", SK_CON_A_EDIT, "Edit", "edit the activity", 0},
    {ACTS, 'p', "p", SK_CON_A_PUBLISH_NOW, "Publish", "publish now", 1},
    {ACTS, 't', "t", SK_CON_A_PUBLISH_AT, "Pub at", "publish at a time", 1},
    {ACTS, 'c', "c", SK_CON_A_CANCEL_ACTIVITY, "Cancel", "cancel (stops the sale)", 1},
    {ACTS, 'd', "d", SK_CON_A_DELETE, "Delete", "delete (draft, scheduled)", 1},
    {ACTS, 'l', "l", SK_CON_A_LIVE_OF, "Live", "watch its live stock", 1},
    {ACTS, 'o', "o", SK_CON_A_ORDERS_OF, "Orders", "its orders", 0},

    /* live */
    {LIVE, 'f', "f", SK_CON_A_FOLLOW_RUNNING, "Follow", "follow the running one", 1},

    /* orders */
    {ORDERS, 's', "s", SK_CON_A_FILTER_STATUS, "Status", "filter by status", 1},
    {ORDERS, 'a', "a", SK_CON_A_FILTER_ACTIVITY, "Activity", "filter by activity id", 1},
    {ORDERS, 'x', "x", SK_CON_A_CLOSE_ORDER, "Close", "close the order by hand", 1},

    /* blacklist */
    {BL, 'a', "a", SK_CON_A_BL_ADD, "Add", "blacklist a user id", 1},
    {BL, 'x', "x", SK_CON_A_BL_REMOVE, "Remove", "take the user off the list", 1},
    {BL, SK_CON_KEY_DELETE, "Del", SK_CON_A_BL_REMOVE, "Remove", "take the user off the list", 0},

    /* moving around, on every screen */
    {SCREENS, '1', "1", SK_CON_A_SHOW_ACTIVITIES, "Activities", "activities screen", 0},
    {SCREENS, '2', "2", SK_CON_A_SHOW_LIVE, "Live", "live stock, daemon health", 0},
    {SCREENS, '3', "3", SK_CON_A_SHOW_ORDERS, "Orders", "orders, timeouts", 0},
    {SCREENS, '4', "4", SK_CON_A_SHOW_BLACKLIST, "Blacklist", "blacklist", 0},
    {SCREENS, SK_CON_KEY_TAB, "Tab", SK_CON_A_NEXT_SCREEN, "Screen", "next screen", 1},
    {SCREENS, SK_CON_KEY_BTAB, "S-Tab", SK_CON_A_PREV_SCREEN, "Screen", "previous screen", 0},
    {SCREENS, 'r', "r", SK_CON_A_REFRESH, "Refresh", "ask the daemon again", 1},
    {SCREENS, SK_CON_KEY_UP, "Up", SK_CON_A_UP, "", "move up", 0},
    {SCREENS, 'k', "k", SK_CON_A_UP, "", "move up", 0},
    {SCREENS, SK_CON_KEY_DOWN, "Down", SK_CON_A_DOWN, "", "move down", 0},
    {SCREENS, 'j', "j", SK_CON_A_DOWN, "", "move down", 0},
    {SCREENS, SK_CON_KEY_PGUP, "PgUp", SK_CON_A_PAGE_UP, "", "a page up", 0},
    {SCREENS, SK_CON_KEY_PGDN, "PgDn", SK_CON_A_PAGE_DOWN, "", "a page down", 0},
    {SCREENS, SK_CON_KEY_HOME, "Home", SK_CON_A_TOP, "", "first row", 0},
    {SCREENS, SK_CON_KEY_END, "End", SK_CON_A_BOTTOM, "", "last row", 0},
};
const size_t sk_con_bindings_count = sizeof(sk_con_bindings) / sizeof(sk_con_bindings[0]);

enum sk_con_action sk_con_key_action(unsigned where, int key)
{
    for (size_t i = 0; i < sk_con_bindings_count; i++)
        if ((sk_con_bindings[i].where & where) && sk_con_bindings[i].key == key)
            return sk_con_bindings[i].action;
    return SK_CON_A_NONE;
}

size_t sk_con_help_bar(unsigned where, int width, const struct sk_con_binding **out, size_t max)
{
    size_t n = 0;
    int used = 0;
    for (size_t i = 0; i < sk_con_bindings_count && n < max; i++) {
        const struct sk_con_binding *b = &sk_con_bindings[i];
        if (!b->in_bar || !(b->where & where))
            continue;
        int w = sk_con_str_width(b->key_name) + 1 + sk_con_str_width(b->label) + (n > 0 ? 2 : 0);
        if (used + w > width)
            break;
        used += w;
        out[n++] = b;
    }
    return n;
}

char *sk_con_help_bar_text(unsigned where, int width, char *buf, size_t len)
{
    const struct sk_con_binding *b[64];
    size_t n = sk_con_help_bar(where, width, b, sizeof(b) / sizeof(b[0]));
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int k = snprintf(buf + used, len - used, "%s%s %s", i > 0 ? "  " : "", b[i]->key_name, b[i]->label);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return buf;
}

void sk_con_cursor_clamp(struct sk_con_cursor *c, long n, int rows)
{
    if (rows < 1)
        rows = 1;
    if (c->sel >= n)
        c->sel = n - 1;
    if (c->sel < 0)
        c->sel = 0;
    if (c->top > c->sel)
        c->top = c->sel;
    if (c->sel >= c->top + rows)
        c->top = c->sel - rows + 1;
    if (c->top > n - rows)
        c->top = n - rows; /* no empty rows below while the list could fill them */
    if (c->top < 0)
        c->top = 0;
}

int sk_con_cursor_move(struct sk_con_cursor *c, enum sk_con_action a, long n, int rows)
{
    long page = rows > 1 ? rows - 1 : 1;
    switch (a) {
    case SK_CON_A_UP:
        c->sel--;
        break;
    case SK_CON_A_DOWN:
        c->sel++;
        break;
    case SK_CON_A_PAGE_UP:
        c->sel -= page;
        break;
    case SK_CON_A_PAGE_DOWN:
        c->sel += page;
        break;
    case SK_CON_A_TOP:
        c->sel = 0;
        break;
    case SK_CON_A_BOTTOM:
        c->sel = n - 1;
        break;
    default:
        return 0;
    }
    sk_con_cursor_clamp(c, n, rows);
    return 1;
}
