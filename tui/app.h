/*
 * The console's controller: the loop that waits on the keyboard and the network,
 * the request plumbing between the model and the admin API, the status line and
 * the modal states (help, confirmation, prompt, form). Screens are views (one
 * view_*.c each) that draw the model and turn actions into requests through the
 * functions below; keys reach them only as actions from keys.c's table.
 */
#ifndef SK_CON_APP_H
#define SK_CON_APP_H

#include <stdint.h>

#include <seckill/plugin.h>

#include "core/timeutil.h" /* sk_now_ms (wall clock) and sk_mono_ms for the views */
#include "form.h"
#include "keys.h"
#include "model.h"
#include "net.h"
#include "settings.h"

enum sk_con_screen_id {
    SK_CON_SCR_ACTIVITIES,
    SK_CON_SCR_LIVE,
    SK_CON_SCR_ORDERS,
    SK_CON_SCR_BLACKLIST,
    SK_CON_SCR_COUNT
};

/* What a screen's action handler did with an action (htop's HandlerResult). */
enum sk_con_handled {
    SK_CON_IGNORED, /* not for this screen: the app tries its own bindings */
    SK_CON_HANDLED,
    SK_CON_LEAVE /* leave the console */
};

/* The requests the console makes; a request's tag.kind. */
enum sk_con_req {
    SK_CON_REQ_GET_ACTIVITIES,
    SK_CON_REQ_GET_STOCK,
    SK_CON_REQ_GET_STATS,
    SK_CON_REQ_GET_ORDERS,
    SK_CON_REQ_GET_BLACKLIST,
    SK_CON_REQ_CREATE,
    SK_CON_REQ_UPDATE,
    SK_CON_REQ_DELETE,
    SK_CON_REQ_PUBLISH,
    SK_CON_REQ_CANCEL,
    SK_CON_REQ_CLOSE_ORDER,
    SK_CON_REQ_BL_ADD,
    SK_CON_REQ_BL_REMOVE
};

/* What a confirmation or a prompt leads to once answered. */
enum sk_con_ask {
    SK_CON_ASK_NONE,
    SK_CON_ASK_PUBLISH_NOW,    /* confirm; tag.id = activity */
    SK_CON_ASK_PUBLISH_AT,     /* prompt a time; tag.id = activity */
    SK_CON_ASK_CANCEL,         /* confirm; tag.id = activity */
    SK_CON_ASK_DELETE,         /* confirm; tag.id = activity */
    SK_CON_ASK_CLOSE_ORDER,    /* confirm; tag.text = order number */
    SK_CON_ASK_ORDER_ACTIVITY, /* prompt an activity id for the orders filter */
    SK_CON_ASK_BL_USER,        /* prompt a user id to blacklist */
    SK_CON_ASK_BL_REASON,      /* prompt its reason; tag.id = user */
    SK_CON_ASK_BL_REMOVE,      /* confirm; tag.id = user */
    SK_CON_ASK_DISCARD_FORM    /* confirm leaving a changed form */
};

enum sk_con_modal {
    SK_CON_MODAL_NONE,
    SK_CON_MODAL_HELP,
    SK_CON_MODAL_CONFIRM,
    SK_CON_MODAL_PROMPT,
    SK_CON_MODAL_FORM
};

struct sk_con_app;

/* One screen: htop's Panel, tmux's window mode. */
struct sk_con_screen {
    const char *title; /* in the tab bar */
    unsigned where;    /* its SK_CON_IN_* bit for the key table */
    /* Draw into rows top..top+rows-1, cols wide (the app draws the bars around). */
    void (*draw)(struct sk_con_app *app, int top, int rows, int cols);
    /* An action from the key table, while no modal state is up. */
    enum sk_con_handled (*action)(struct sk_con_app *app, enum sk_con_action a);
    /* Start the fetches it needs when they are due (called every loop turn while
     * shown, with the monotonic clock); NULL when it needs none of its own. */
    void (*tick)(struct sk_con_app *app, int64_t now_mono_ms);
};

extern const struct sk_con_screen sk_con_view_activities;
extern const struct sk_con_screen sk_con_view_live;
extern const struct sk_con_screen sk_con_view_orders;
extern const struct sk_con_screen sk_con_view_blacklist;

struct sk_con_app {
    const struct sk_con_settings *settings; /* not owned */
    struct sk_con_net *net;                 /* owned */
    struct sk_con_model model;

    enum sk_con_screen_id screen;
    struct sk_con_cursor cur[SK_CON_SCR_COUNT];
    int page_rows; /* rows of the list last drawn (PgUp/PgDn) */

    /* status line: the last result of an operator's action, and the connection */
    char status[SK_CON_MSGLEN];
    int status_is_error;
    int64_t status_at_mono;
    char conn_err[SK_CON_MSGLEN]; /* "" while the daemon answers well */

    /* modal states */
    enum sk_con_modal modal;
    enum sk_con_ask ask;
    struct sk_con_tag ask_tag;
    char question[SK_CON_MSGLEN]; /* confirmation or prompt label */
    struct sk_con_field prompt;
    struct sk_con_form form; /* valid while modal is FORM */
    long form_top;           /* first item row the form shows */
    int form_dirty;
    int form_saving;         /* a create/update is in flight */
    enum sk_con_modal under; /* what a help, confirmation or prompt covers: NONE or FORM */
    int cursor_y, cursor_x;  /* where the terminal cursor goes (a field), -1 for hidden */

    /* what the screens follow */
    uint64_t live_id;         /* chosen activity for the live screen; 0 = follow the running one */
    int order_status;         /* -1 all, else enum sk_con_ord_status */
    uint64_t order_activity;  /* 0 all */
    uint64_t select_activity; /* select this id when the list next arrives */

    int64_t next_fetch[SK_CON_RES_COUNT]; /* monotonic ms when each resource is due */
    int colors;                           /* colours are in use */
    int quit;
};

/* Set up (settings must outlive the app); SK_ERR with err when libcurl cannot. */
int sk_con_app_init(struct sk_con_app *app, const struct sk_con_settings *settings, char *err, size_t errlen);
void sk_con_app_free(struct sk_con_app *app);
/* Run until the operator leaves (the terminal must be set up by ui.c). */
void sk_con_app_run(struct sk_con_app *app);

/* --- for the views ------------------------------------------------------------- */

/* Fetch resource `kind` now unless one is in flight (the live screen's stock is
 * for the activity it follows, the orders for the current filter). */
void sk_con_app_fetch(struct sk_con_app *app, enum sk_con_res_kind kind);
/* Fetch `kind` at the next turn of the loop (after a change, a new filter). */
void sk_con_app_fetch_soon(struct sk_con_app *app, enum sk_con_res_kind kind);
/* Show screen s, fetching what it shows at once. */
void sk_con_app_show(struct sk_con_app *app, enum sk_con_screen_id s);
/* Fetch `kind` if it is due by its period (ms) and remember the next time. */
void sk_con_app_fetch_every(struct sk_con_app *app, enum sk_con_res_kind kind, int64_t now_mono_ms, int64_t period_ms);
/* Send a request that changes something; the answer lands in the status line and
 * triggers the refetches it implies. */
void sk_con_app_send(struct sk_con_app *app, const char *method, const char *path, const char *body,
                     const struct sk_con_tag *tag);

/* The status line: an operator's sentence, info or error. */
void sk_con_app_say(struct sk_con_app *app, int is_error, const char *fmt, ...) SK_PRINTF(3, 4);

/* Ask y/n; on yes the app carries out `ask` with `tag`. */
void sk_con_app_confirm(struct sk_con_app *app, enum sk_con_ask ask, const struct sk_con_tag *tag,
                        const char *question);
/* Ask for one line of text, pre-filled with `initial` (may be NULL). */
void sk_con_app_prompt(struct sk_con_app *app, enum sk_con_ask ask, const struct sk_con_tag *tag, const char *label,
                       const char *initial);
/* Open the form: for a new activity (a == NULL) or to edit a. */
void sk_con_app_open_form(struct sk_con_app *app, const struct sk_con_activity *a);

/* The activity the live screen shows (chosen, else the running one), or 0. */
uint64_t sk_con_app_live_activity(const struct sk_con_app *app);

#endif
