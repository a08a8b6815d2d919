/*
 * The console's one key-binding table: which key does what where. Screens never
 * test keys themselves; they receive actions. The help bar and the help screen are
 * generated from the same table, so they cannot drift from what the keys do.
 *
 * Keys are Unicode code points for characters (Ctrl-X is 0x18), and the
 * SK_CON_KEY_* values above the Unicode range for the rest; the terminal layer
 * (ui.c) translates what ncurses reads into these, so this file needs no terminal.
 */
#ifndef SK_CON_KEYS_H
#define SK_CON_KEYS_H

#include <stddef.h>

#define SK_CON_CTRL(c) ((c)&0x1f)

enum sk_con_key {
    SK_CON_KEY_NONE = 0,
    SK_CON_KEY_UP = 0x110000,
    SK_CON_KEY_DOWN,
    SK_CON_KEY_LEFT,
    SK_CON_KEY_RIGHT,
    SK_CON_KEY_HOME,
    SK_CON_KEY_END,
    SK_CON_KEY_PGUP,
    SK_CON_KEY_PGDN,
    SK_CON_KEY_BACKSPACE,
    SK_CON_KEY_DELETE,
    SK_CON_KEY_ENTER,
    SK_CON_KEY_TAB,
    SK_CON_KEY_BTAB,
    SK_CON_KEY_ESC,
    SK_CON_KEY_F1,
    SK_CON_KEY_F2,
    SK_CON_KEY_F5 = SK_CON_KEY_F1 + 4,
    SK_CON_KEY_F8 = SK_CON_KEY_F1 + 7,
    SK_CON_KEY_F10 = SK_CON_KEY_F1 + 9,
    SK_CON_KEY_RESIZE,
    SK_CON_KEY_UNKNOWN /* a key the console has no name for */
};

/* Where a binding applies: one bit per screen or modal state. */
enum sk_con_where {
    SK_CON_IN_ACTIVITIES = 1u << 0,
    SK_CON_IN_LIVE = 1u << 1,
    SK_CON_IN_ORDERS = 1u << 2,
    SK_CON_IN_BLACKLIST = 1u << 3,
    SK_CON_IN_FORM = 1u << 4,
    SK_CON_IN_HELP = 1u << 5,
    SK_CON_IN_CONFIRM = 1u << 6,
    SK_CON_IN_PROMPT = 1u << 7,
    SK_CON_IN_SCREENS = SK_CON_IN_ACTIVITIES | SK_CON_IN_LIVE | SK_CON_IN_ORDERS | SK_CON_IN_BLACKLIST,
    SK_CON_IN_LISTS = SK_CON_IN_ACTIVITIES | SK_CON_IN_ORDERS | SK_CON_IN_BLACKLIST | SK_CON_IN_LIVE
};

enum sk_con_action {
    SK_CON_A_NONE,
    /* everywhere on the four screens */
    SK_CON_A_QUIT,
    SK_CON_A_HELP,
    SK_CON_A_SHOW_ACTIVITIES,
    SK_CON_A_SHOW_LIVE,
    SK_CON_A_SHOW_ORDERS,
    SK_CON_A_SHOW_BLACKLIST,
    SK_CON_A_NEXT_SCREEN,
    SK_CON_A_PREV_SCREEN,
    SK_CON_A_REFRESH,
    SK_CON_A_UP,
    SK_CON_A_DOWN,
    SK_CON_A_PAGE_UP,
    SK_CON_A_PAGE_DOWN,
    SK_CON_A_TOP,
    SK_CON_A_BOTTOM,
    /* activities */
    SK_CON_A_NEW,
    SK_CON_A_EDIT,
    SK_CON_A_DELETE,
    SK_CON_A_PUBLISH_NOW,
    SK_CON_A_PUBLISH_AT,
    SK_CON_A_CANCEL_ACTIVITY,
    SK_CON_A_LIVE_OF,
    SK_CON_A_ORDERS_OF,
    /* live */
    SK_CON_A_FOLLOW_RUNNING,
    /* orders */
    SK_CON_A_FILTER_STATUS,
    SK_CON_A_FILTER_ACTIVITY,
    SK_CON_A_CLOSE_ORDER,
    /* blacklist */
    SK_CON_A_BL_ADD,
    SK_CON_A_BL_REMOVE,
    /* the form and the prompt line */
    SK_CON_A_NEXT_FIELD,
    SK_CON_A_PREV_FIELD,
    SK_CON_A_SAVE,
    SK_CON_A_DISCARD,
    SK_CON_A_ADD_ITEM,
    SK_CON_A_REMOVE_ITEM,
    SK_CON_A_CURSOR_LEFT,
    SK_CON_A_CURSOR_RIGHT,
    SK_CON_A_CURSOR_HOME,
    SK_CON_A_CURSOR_END,
    SK_CON_A_ERASE_BACK,
    SK_CON_A_ERASE_FORWARD,
    SK_CON_A_ACCEPT,
    /* confirmation and help */
    SK_CON_A_YES,
    SK_CON_A_NO,
    SK_CON_A_CLOSE_HELP
};

struct sk_con_binding {
    unsigned where;       /* SK_CON_IN_* bits */
    int key;              /* code point or SK_CON_KEY_* */
    const char *key_name; /* how the help names the key: "q", "Enter", "F2" */
    enum sk_con_action action;
    const char *label; /* short, for the help bar: "Quit" */
    const char *help;  /* one line for the help screen */
    int in_bar;        /* shown in the help bar (one key per action) */
};

extern const struct sk_con_binding sk_con_bindings[];
extern const size_t sk_con_bindings_count;

/* The action of `key` in `where` (one SK_CON_IN_* bit), or SK_CON_A_NONE. */
enum sk_con_action sk_con_key_action(unsigned where, int key);

/* Up to max bindings of `where` whose "KEY Label" entries, two spaces apart, fit in
 * `width` columns, in the table's order (the most needed keys come first). The
 * pointers are into sk_con_bindings. Returns how many. */
size_t sk_con_help_bar(unsigned where, int width, const struct sk_con_binding **out, size_t max);
/* The same as one line of text, "? Help  q Quit  n New", for tests and logs. */
char *sk_con_help_bar_text(unsigned where, int width, char *buf, size_t len);

/* Selection and scrolling of a list screen. */
struct sk_con_cursor {
    long sel; /* selected row, 0 when the list is empty */
    long top; /* first row shown */
};

/* Keep a cursor inside n rows, with its selection visible in `rows` rows. */
void sk_con_cursor_clamp(struct sk_con_cursor *c, long n, int rows);
/* Move a cursor for the UP, DOWN, PAGE_UP, PAGE_DOWN, TOP and BOTTOM actions over n
 * rows, `rows` of them visible; returns 1 if `a` was one of those, else 0. */
int sk_con_cursor_move(struct sk_con_cursor *c, enum sk_con_action a, long n, int rows);

#endif
