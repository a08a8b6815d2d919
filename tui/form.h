/*
 * The activity form's model: the text of every field, the cursor, which field has
 * the focus, and the validation that turns the text into the admin API's JSON body.
 * The form view (view_form.c) only draws this and feeds it keys.
 *
 * Validation follows docs/api.md, so an operator hears about a mistake before the
 * daemon does, in the form's words ("Item 2 Stock: …"); the daemon still checks.
 */
#ifndef SK_CON_FORM_H
#define SK_CON_FORM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Bytes a field can hold: a 256-byte title plus the NUL, with room to spare. */
#define SK_CON_FIELD_SIZE     320
#define SK_CON_FORM_MAX_ITEMS 1000

/* One line of editable UTF-8 text; `cur` is a byte offset on a character boundary. */
struct sk_con_field {
    char text[SK_CON_FIELD_SIZE];
    size_t len;
    size_t cur;
};

/* Replace the text and put the cursor at its end (cut to fit at a character). */
void sk_con_field_set(struct sk_con_field *fl, const char *text);
/* Insert n bytes of UTF-8 at the cursor. SK_ERR (nothing changes) when they are not
 * whole valid characters, contain control characters, or do not fit. */
int sk_con_field_insert(struct sk_con_field *fl, const char *utf8, size_t n);
/* Delete the character before (backspace) or at (delete) the cursor. */
void sk_con_field_backspace(struct sk_con_field *fl);
void sk_con_field_delete(struct sk_con_field *fl);
void sk_con_field_left(struct sk_con_field *fl);
void sk_con_field_right(struct sk_con_field *fl);
void sk_con_field_home(struct sk_con_field *fl);
void sk_con_field_end(struct sk_con_field *fl);
/* Columns of the text before the cursor (where the terminal cursor goes). */
int sk_con_field_cursor_col(const struct sk_con_field *fl);
/* Where to start showing the field in a box `width` columns wide so that the cursor
 * is inside it: a byte offset on a character boundary. */
size_t sk_con_field_view_start(const struct sk_con_field *fl, int width);

enum sk_con_form_head { SK_CON_F_NAME, SK_CON_F_PUBLISH_AT, SK_CON_F_STARTS_AT, SK_CON_F_ENDS_AT, SK_CON_F_HEAD_COUNT };

enum sk_con_form_col {
    SK_CON_FI_SKU,
    SK_CON_FI_TITLE,
    SK_CON_FI_PRICE,
    SK_CON_FI_SECKILL,
    SK_CON_FI_STOCK,
    SK_CON_FI_LIMIT,
    SK_CON_FI_COUNT
};

struct sk_con_form_item {
    uint64_t id; /* 0 for an item the operator added */
    struct sk_con_field f[SK_CON_FI_COUNT];
};

struct sk_con_form {
    uint64_t activity_id; /* 0: create (POST), else update this one (PUT) */
    struct sk_con_field head[SK_CON_F_HEAD_COUNT];
    struct sk_con_form_item *items; /* owned */
    size_t n_items, cap;
    size_t focus; /* field index: head fields first, then SK_CON_FI_COUNT per item */
};

/* An empty form for a new activity with one empty item (per-user limit 1). */
void sk_con_form_init_new(struct sk_con_form *f);
/* A form holding activity a, for an update. */
void sk_con_form_init_edit(struct sk_con_form *f, const struct sk_con_activity *a);
void sk_con_form_free(struct sk_con_form *f);

size_t sk_con_form_field_count(const struct sk_con_form *f);
/* Field at index (< count). */
struct sk_con_field *sk_con_form_field(struct sk_con_form *f, size_t index);
/* Which field index is: returns -1 and the head field in *col for a head field, or
 * the item number and its column in *col. */
long sk_con_form_locate(const struct sk_con_form *f, size_t index, int *col);
/* The index of item `item`'s column `col`. */
size_t sk_con_form_index(size_t item, int col);
/* The operator's name of field index: "Name", "Item 2 Seckill price". */
char *sk_con_form_label(const struct sk_con_form *f, size_t index, char *buf, size_t len);

/* Focus the next / previous field, wrapping around. */
void sk_con_form_next(struct sk_con_form *f);
void sk_con_form_prev(struct sk_con_form *f);
/* Add an empty item after the focused one (at the end from a head field) and focus
 * its SKU. SK_ERR with a sentence when the form already has the most items. */
int sk_con_form_add_item(struct sk_con_form *f, char *err, size_t errlen);
/* Remove the focused item. SK_ERR with a sentence when the focus is not on an item
 * or it is the only one. */
int sk_con_form_remove_item(struct sk_con_form *f, char *err, size_t errlen);

/* Check one field on its own (as the operator leaves it); also the relations that
 * it completes (ends after starts, seckill price not above price, SKU unique).
 * SK_OK, or SK_ERR with "Label: what is wrong" in err. */
int sk_con_form_check_field(const struct sk_con_form *f, size_t index, int64_t now_ms, char *err, size_t errlen);
/* Validate every field and build the request body (relative times like "+10m" are
 * taken from now_ms). SK_OK and *body (malloc'd JSON text, caller frees); or SK_ERR
 * with the first bad field's index in *bad and the sentence in err, *body untouched. */
int sk_con_form_build(const struct sk_con_form *f, int64_t now_ms, char **body, size_t *bad, char *err, size_t errlen);
/* Move the focus to the field that a daemon's validation message names
 * ("items[1].stock: must be …" → Item 2 Stock). Returns 1 if it named one. */
int sk_con_form_focus_error(struct sk_con_form *f, const char *daemon_msg);

#endif
