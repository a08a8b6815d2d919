/*
 * Drawing shared by the views, and the views that are not screens (the form and
 * the help). Each screen's view is its own file: view_activities.c, view_live.c,
 * view_orders.c, view_blacklist.c (their struct sk_con_screen is in app.h).
 */
#ifndef SK_CON_VIEW_H
#define SK_CON_VIEW_H

#include "app.h"
#include "form.h"
#include "model.h"
#include "ui.h"

/* Below this the console asks for a bigger terminal instead of drawing. */
#define SK_CON_MIN_COLS 60
#define SK_CON_MIN_ROWS 12

/* A form field at (y, x), `width` wide, scrolled so its cursor shows; when focused,
 * cy and cx get where the terminal cursor goes. */
void sk_con_view_field(int y, int x, int width, const struct sk_con_field *fl, int focused, int *cy, int *cx);

/* One line of text in the middle of the area. */
void sk_con_view_message(int top, int rows, int cols, enum sk_con_role role, const char *text);

/* When resource r has nothing to draw yet, or the daemon lacks it, say so in the
 * area ("loading …", "<what>: not available on this daemon", the error) and return
 * 1; return 0 when the view should draw the data. */
int sk_con_view_res_state(const struct sk_con_res *r, int top, int rows, int cols, const char *what);

/* A list's row: the selected one across the whole width in SK_CON_R_SELECTED. */
void sk_con_view_row_bg(int y, int cols, int selected);

/* The activity form (app->form), in place of the screen. */
void sk_con_view_form_draw(struct sk_con_app *app, int top, int rows, int cols);
/* The help for the keys of `where`, over the area. */
void sk_con_view_help_draw(struct sk_con_app *app, int top, int rows, int cols, unsigned where);

#endif
