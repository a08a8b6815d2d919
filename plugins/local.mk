# plugins/: one .so per plugin, named <kind>_<name>.so, exporting only `sk_plugin`.
plugins_LTLIBRARIES += plugins/stock_redis.la
plugins_stock_redis_la_SOURCES = \
	plugins/stock/redis/redis_stock.c \
	plugins/stock/redis/redis_conn.c plugins/stock/redis/redis_conn.h \
	plugins/stock/redis/scripts.c plugins/stock/redis/scripts.h
plugins_stock_redis_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(UV_CFLAGS) $(HIREDIS_CFLAGS) $(JANSSON_CFLAGS)
plugins_stock_redis_la_LIBADD = $(HIREDIS_LIBS) $(JANSSON_LIBS) $(UV_LIBS)
plugins_stock_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS)
