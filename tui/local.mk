# tui/: seckill-console, the operator console. Everything that needs no terminal
# (model, formatting, the form, the key table, settings, the network layer) is a
# convenience library that tests/check_console_model links; the terminal layer and
# the views are only in the program.
noinst_LTLIBRARIES += tui/libskconsole.la
tui_libskconsole_la_SOURCES = \
	tui/format.c tui/format.h \
	tui/model.c tui/model.h \
	tui/form.c tui/form.h \
	tui/keys.c tui/keys.h \
	tui/settings.c tui/settings.h \
	tui/net.c tui/net.h \
	core/timeutil.c core/timeutil.h
tui_libskconsole_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS) $(CURL_CFLAGS)
tui_libskconsole_la_LIBADD = $(JANSSON_LIBS) $(YAML_LIBS) $(CURL_LIBS) -lpthread

bin_PROGRAMS += tui/seckill-console
tui_seckill_console_SOURCES = \
	tui/main.c \
	tui/app.c tui/app.h \
	tui/ui.c tui/ui.h \
	tui/view.h tui/view_common.c \
	tui/view_activities.c tui/view_live.c tui/view_orders.c tui/view_blacklist.c \
	tui/view_form.c
tui_seckill_console_CFLAGS = $(AM_CFLAGS) $(NCURSES_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
tui_seckill_console_LDADD = tui/libskconsole.la $(NCURSES_LIBS) $(JANSSON_LIBS) $(CURL_LIBS)

# The console under tmux, run by scripts/test.sh after the Check suites.
EXTRA_DIST += tests/console_e2e.sh
