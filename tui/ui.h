/*
 * The terminal: ncursesw set-up, the colour scheme (with a monochrome twin, so the
 * console reads the same on a terminal without colours), keys translated into
 * keys.h's codes, and drawing of UTF-8 text cut to a width in columns. Only the
 * views and the app draw; the model never includes this.
 */
#ifndef SK_CON_UI_H
#define SK_CON_UI_H

/* Roles of text on screen; each has a colour and a monochrome attribute. */
enum sk_con_role {
    SK_CON_R_NORMAL,
    SK_CON_R_TITLE,      /* the top bar */
    SK_CON_R_TAB_ON,     /* the current screen's tab */
    SK_CON_R_HEADER,     /* column headings */
    SK_CON_R_SELECTED,   /* the selected row */
    SK_CON_R_ERROR,      /* errors in text */
    SK_CON_R_STATUS_ERR, /* the status line showing an error */
    SK_CON_R_OK,
    SK_CON_R_WARN,
    SK_CON_R_DIM,
    SK_CON_R_KEY, /* a key's name in the help bar */
    SK_CON_R_BAR_PAID,
    SK_CON_R_BAR_RESERVED,
    SK_CON_R_BAR_FREE,
    SK_CON_R_FIELD,    /* a form field */
    SK_CON_R_FIELD_ON, /* the focused form field */
    SK_CON_R_COUNT
};

/* Enter curses mode: raw keys (Ctrl-S and Ctrl-C reach the console), keypad,
 * invisible cursor, a short Esc delay, colours unless `monochrome` or the terminal
 * has none. Returns 1 when colours are in use. */
int sk_con_ui_start(int monochrome);
/* Leave curses mode (also safe when sk_con_ui_start was not called). */
void sk_con_ui_stop(void);

/* The curses attribute of a role. */
int sk_con_ui_attr(enum sk_con_role role);

/* The next key without waiting: a code point, an SK_CON_KEY_* value, or
 * SK_CON_KEY_NONE when there is none. */
int sk_con_ui_key(void);

/* Draw UTF-8 text at (y, x) cut to `width` columns ("…" when cut); with `pad` the
 * rest of the width is filled with blanks in the same role. Nothing is drawn
 * outside the screen. Returns the columns drawn. */
int sk_con_ui_text(int y, int x, int width, enum sk_con_role role, int pad, const char *text);
/* printf-style, then as sk_con_ui_text. */
int sk_con_ui_textf(int y, int x, int width, enum sk_con_role role, int pad, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Fill `width` cells at (y, x) with the ASCII character c in role. */
void sk_con_ui_fill(int y, int x, int width, enum sk_con_role role, char c);

#endif
