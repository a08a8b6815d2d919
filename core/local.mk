# core/: the daemon. Everything but main.c goes into a convenience library that the
# tests link against.
noinst_LTLIBRARIES += core/libseckillcore.la
core_libseckillcore_la_SOURCES = \
	core/log.c core/log.h \
	core/auth/jwt.c core/auth/jwt.h \
	core/order_no.c core/order_no.h \
	core/catalog.c core/catalog.h \
	core/client/client_api.c core/client/client_api.h \
	core/client/catalog_views.c core/client/reserve.c core/client/orders.c \
	core/client/confirm.c core/client/notify.c \
	core/timeutil.c core/timeutil.h \
	core/config.c core/config.h \
	core/metrics.c core/metrics.h \
	core/plugin_host.c core/plugin_host.h \
	core/db/db.c core/db/db.h \
	core/db/migrate.c \
	core/db/activity_store.c core/db/activity_store.h \
	core/db/order_stats.c core/db/order_stats.h \
	core/db/order_store.c core/db/order_store.h \
	core/db/payment_store.c core/db/payment_store.h \
	core/db/pool.c core/db/pool.h \
	core/orders/writer.c core/orders/writer.h \
	core/orders/closer.c core/orders/closer.h \
	core/http/server.c core/http/server.h \
	core/http/request.c core/http/request.h \
	core/http/router.c core/http/router.h \
	core/admin/activity_json.c core/admin/activity_json.h \
	core/admin/admin_api.c core/admin/admin_api.h \
	core/admin/stats_api.c core/admin/orders_api.c \
	core/stats.c core/stats.h \
	core/health.c core/health.h \
	core/scheduler.c core/scheduler.h \
	core/daemon.c core/daemon.h
nodist_core_libseckillcore_la_SOURCES = core/db/migrations_gen.c
core_libseckillcore_la_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(H2O_CFLAGS) $(HIREDIS_CFLAGS) \
	$(MARIADB_CFLAGS) $(YAML_CFLAGS) $(OPENSSL_CFLAGS) $(JANSSON_CFLAGS)
core_libseckillcore_la_LIBADD = $(UV_LIBS) $(H2O_LIBS) $(MARIADB_LIBS) $(YAML_LIBS) \
	$(OPENSSL_LIBS) $(JANSSON_LIBS) -ldl -lpthread

# The SQL migrations are compiled into the daemon, so it never depends on a path.
MIGRATIONS = $(sort $(wildcard $(top_srcdir)/sql/[0-9][0-9][0-9]_*.sql))
core/db/migrations_gen.c: $(MIGRATIONS) $(top_srcdir)/scripts/embed-migrations.sh
	$(AM_V_GEN)$(MKDIR_P) core/db && $(SHELL) $(top_srcdir)/scripts/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += core/db/migrations_gen.c
CLEANFILES += core/db/migrations_gen.c

bin_PROGRAMS += core/seckilld
core_seckilld_SOURCES = core/main.c
core_seckilld_CFLAGS = $(core_libseckillcore_la_CFLAGS)
core_seckilld_LDADD = core/libseckillcore.la

bin_PROGRAMS += core/seckill-mint-token
core_seckill_mint_token_SOURCES = core/tools/mint_token.c
core_seckill_mint_token_CFLAGS = $(core_libseckillcore_la_CFLAGS)
core_seckill_mint_token_LDADD = core/libseckillcore.la
