/* ncursesw set-up, colours, keys and UTF-8 drawing; see ui.h. */
#include "ui.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "keys.h"

/* Widest text drawn in one call; wider terminals get it cut here. */
#define MAX_COLS 512

static int started;
static int use_colors;

struct look {
    short fg, bg;   /* colour pair; -1 is the terminal's default */
    int color_attr; /* added to the pair */
    int mono_attr;  /* the whole look without colours */
};

/* Every role once, so colour and monochrome terminals tell the same things apart. */
static const struct look looks[SK_CON_R_COUNT] = {
    [SK_CON_R_NORMAL] = {-1, -1, A_NORMAL, A_NORMAL},
    [SK_CON_R_TITLE] = {COLOR_WHITE, COLOR_BLUE, A_BOLD, A_REVERSE},
    [SK_CON_R_TAB_ON] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_BOLD | A_UNDERLINE},
    [SK_CON_R_HEADER] = {COLOR_BLACK, COLOR_GREEN, A_NORMAL, A_BOLD | A_UNDERLINE},
    [SK_CON_R_SELECTED] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
    [SK_CON_R_ERROR] = {COLOR_RED, -1, A_BOLD, A_BOLD},
    [SK_CON_R_STATUS_ERR] = {COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE | A_BOLD},
    [SK_CON_R_OK] = {COLOR_GREEN, -1, A_NORMAL, A_NORMAL},
    [SK_CON_R_WARN] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD},
    [SK_CON_R_DIM] = {-1, -1, A_DIM, A_DIM},
    [SK_CON_R_KEY] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
    [SK_CON_R_BAR_PAID] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
    [SK_CON_R_BAR_RESERVED] = {COLOR_YELLOW, -1, A_BOLD, A_NORMAL},
    [SK_CON_R_BAR_FREE] = {-1, -1, A_DIM, A_DIM},
    [SK_CON_R_FIELD] = {-1, -1, A_UNDERLINE, A_UNDERLINE},
    [SK_CON_R_FIELD_ON] = {COLOR_BLACK, COLOR_YELLOW, A_NORMAL, A_REVERSE},
};

int sk_con_ui_start(int monochrome)
{
    initscr();
    started = 1;
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    use_colors = 0;
    if (!monochrome && has_colors() && start_color() == OK) {
        use_default_colors();
        use_colors = 1;
        for (int r = 0; r < SK_CON_R_COUNT; r++)
            if (looks[r].fg != -1 || looks[r].bg != -1)
                init_pair((short)(r + 1), looks[r].fg, looks[r].bg);
    }
    return use_colors;
}

void sk_con_ui_stop(void)
{
    if (!started)
        return;
    endwin();
    started = 0;
}

int sk_con_ui_attr(enum sk_con_role role)
{
    const struct look *l = &looks[role];
    if (!use_colors)
        return l->mono_attr;
    if (l->fg == -1 && l->bg == -1)
        return l->color_attr;
    return (int)COLOR_PAIR(role + 1) | l->color_attr;
}

int sk_con_ui_key(void)
{
    wint_t wch;
    int r = get_wch(&wch);
    if (r == ERR)
        return SK_CON_KEY_NONE;
    if (r == KEY_CODE_YES) {
        switch (wch) {
        case KEY_UP:
            return SK_CON_KEY_UP;
        case KEY_DOWN:
            return SK_CON_KEY_DOWN;
        case KEY_LEFT:
            return SK_CON_KEY_LEFT;
        case KEY_RIGHT:
            return SK_CON_KEY_RIGHT;
        case KEY_HOME:
            return SK_CON_KEY_HOME;
        case KEY_END:
            return SK_CON_KEY_END;
        case KEY_PPAGE:
            return SK_CON_KEY_PGUP;
        case KEY_NPAGE:
            return SK_CON_KEY_PGDN;
        case KEY_BACKSPACE:
            return SK_CON_KEY_BACKSPACE;
        case KEY_DC:
            return SK_CON_KEY_DELETE;
        case KEY_ENTER:
            return SK_CON_KEY_ENTER;
        case KEY_BTAB:
            return SK_CON_KEY_BTAB;
        case KEY_RESIZE:
            return SK_CON_KEY_RESIZE;
        default:
            if (wch >= KEY_F(1) && wch <= KEY_F(10))
                return SK_CON_KEY_F1 + (int)(wch - KEY_F(1));
            return SK_CON_KEY_UNKNOWN;
        }
    }
    switch (wch) {
    case '\t':
        return SK_CON_KEY_TAB;
    case '\r':
    case '\n':
        return SK_CON_KEY_ENTER;
    case 27:
        return SK_CON_KEY_ESC;
    case 127:
    case 8:
        return SK_CON_KEY_BACKSPACE;
    default:
        return (int)wch;
    }
}

int sk_con_ui_text(int y, int x, int width, enum sk_con_role role, int pad, const char *text)
{
    char buf[MAX_COLS * 4 + 8];
    if (y < 0 || y >= LINES || x < 0 || x >= COLS || width <= 0)
        return 0;
    if (width > COLS - x)
        width = COLS - x;
    if (width > MAX_COLS)
        width = MAX_COLS;
    int cols = sk_con_str_fit(text, width, pad, buf, sizeof(buf));
    int a = sk_con_ui_attr(role);
    attron(a);
    mvaddstr(y, x, buf); /* ERR in the last cell of the screen is expected: drawn anyway */
    attroff(a);
    return cols;
}

int sk_con_ui_textf(int y, int x, int width, enum sk_con_role role, int pad, const char *fmt, ...)
{
    char buf[MAX_COLS * 4 + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return sk_con_ui_text(y, x, width, role, pad, buf);
}

void sk_con_ui_fill(int y, int x, int width, enum sk_con_role role, char c)
{
    char buf[MAX_COLS + 1];
    if (width > MAX_COLS)
        width = MAX_COLS;
    if (width <= 0)
        return;
    memset(buf, c, (size_t)width);
    buf[width] = '\0';
    sk_con_ui_text(y, x, width, role, 0, buf);
}
