# plugins/: one .so per plugin, named <kind>_<name>.so, exporting only `sk_plugin`.

# plugins/common/conf: the config-key helpers of every plugin (one wording for bad
# keys). A libtool convenience library like the two below; its names stay hidden.
noinst_LTLIBRARIES += plugins/common/libskconf.la
plugins_common_libskconf_la_SOURCES = plugins/common/conf.c plugins/common/conf.h plugins/common/say.h
plugins_common_libskconf_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -fPIC $(JANSSON_CFLAGS)

# plugins/common: what the plugins that talk to the stock plugin's Redis share (the
# async connection, the shared config keys, the reservation-log reader). A libtool
# convenience library, linked into each of those plugins (with libskconf); its names
# stay hidden.
noinst_LTLIBRARIES += plugins/common/libskredis.la
plugins_common_libskredis_la_SOURCES = \
	plugins/common/redis_conn.c plugins/common/redis_conn.h \
	plugins/common/redis_conf.c plugins/common/redis_conf.h \
	plugins/common/reslog.c plugins/common/reslog.h \
	plugins/common/say.h
plugins_common_libskredis_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -fPIC $(UV_CFLAGS) $(HIREDIS_CFLAGS) \
	$(JANSSON_CFLAGS)
plugins_common_libskredis_la_LIBADD = plugins/common/libskconf.la
PLUGIN_COMMON_CFLAGS = -I$(top_srcdir)/plugins/common

# plugins/common/http_loop: libcurl multi driven by a libuv loop, for the plugins
# that speak HTTP to an outside service (kafka_rest, alipay).
noinst_LTLIBRARIES += plugins/common/libskhttp.la
plugins_common_libskhttp_la_SOURCES = plugins/common/http_loop.c plugins/common/http_loop.h
plugins_common_libskhttp_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -fPIC $(UV_CFLAGS) $(CURL_CFLAGS)

plugins_LTLIBRARIES += plugins/stock_redis.la
plugins_stock_redis_la_SOURCES = \
	plugins/stock/redis/redis_stock.c \
	plugins/stock/redis/reserve_batch.c plugins/stock/redis/reserve_batch.h \
	plugins/stock/redis/scripts.c plugins/stock/redis/scripts.h
plugins_stock_redis_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(PLUGIN_COMMON_CFLAGS) $(UV_CFLAGS) \
	$(HIREDIS_CFLAGS) $(JANSSON_CFLAGS)
plugins_stock_redis_la_LIBADD = plugins/common/libskredis.la $(HIREDIS_LIBS) $(JANSSON_LIBS) $(UV_LIBS)
plugins_stock_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS)

plugins_LTLIBRARIES += plugins/queue_redis_streams.la
plugins_queue_redis_streams_la_SOURCES = plugins/queue/redis_streams/redis_streams.c
plugins_queue_redis_streams_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(PLUGIN_COMMON_CFLAGS) $(UV_CFLAGS) \
	$(HIREDIS_CFLAGS) $(JANSSON_CFLAGS)
plugins_queue_redis_streams_la_LIBADD = plugins/common/libskredis.la $(HIREDIS_LIBS) $(JANSSON_LIBS) $(UV_LIBS)
plugins_queue_redis_streams_la_LDFLAGS = $(PLUGIN_LDFLAGS)

# kafka_rest: the reservations through a Kafka REST Proxy (v2) over libcurl multi on
# the loop, relaying the stock plugin's reservation logs (docs/kafka.md).
plugins_LTLIBRARIES += plugins/queue_kafka_rest.la
plugins_queue_kafka_rest_la_SOURCES = \
	plugins/queue/kafka_rest/kafka_rest.c plugins/queue/kafka_rest/kafka_rest.h \
	plugins/queue/kafka_rest/conf.c \
	plugins/queue/kafka_rest/proxy.c \
	plugins/queue/kafka_rest/records.c \
	plugins/queue/kafka_rest/relay.c \
	plugins/queue/kafka_rest/consumer.c
plugins_queue_kafka_rest_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(PLUGIN_COMMON_CFLAGS) $(UV_CFLAGS) \
	$(CURL_CFLAGS) $(HIREDIS_CFLAGS) $(JANSSON_CFLAGS)
plugins_queue_kafka_rest_la_LIBADD = plugins/common/libskredis.la plugins/common/libskhttp.la $(CURL_LIBS) $(HIREDIS_LIBS) $(JANSSON_LIBS) \
	$(UV_LIBS) -lpthread
plugins_queue_kafka_rest_la_LDFLAGS = $(PLUGIN_LDFLAGS)

plugins_LTLIBRARIES += plugins/payment_alipay.la
plugins_payment_alipay_la_SOURCES = \
	plugins/payment/alipay/alipay.c plugins/payment/alipay/alipay.h \
	plugins/payment/alipay/trade.c plugins/payment/alipay/notify.c \
	plugins/payment/alipay/params.c plugins/payment/alipay/params.h \
	plugins/payment/alipay/sign.c plugins/payment/alipay/sign.h
plugins_payment_alipay_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(PLUGIN_COMMON_CFLAGS) $(UV_CFLAGS) $(CURL_CFLAGS) \
	$(OPENSSL_CFLAGS) \
	$(JANSSON_CFLAGS)
plugins_payment_alipay_la_LIBADD = plugins/common/libskhttp.la plugins/common/libskconf.la $(CURL_LIBS) $(OPENSSL_LIBS) $(JANSSON_LIBS) $(UV_LIBS)
plugins_payment_alipay_la_LDFLAGS = $(PLUGIN_LDFLAGS)
