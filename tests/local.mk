# tests/: one Check suite per part. Suites that need Redis or MariaDB read the
# addresses that scripts/stack.sh exports (SK_TEST_REDIS_PORT, SK_TEST_MYSQL_PORT…)
# and fail with a clear message when the stack is not running.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(UV_CFLAGS) $(H2O_CFLAGS) $(HIREDIS_CFLAGS) \
	$(MARIADB_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) \
	-DSK_TEST_SRCDIR='"$(abs_top_srcdir)"' -DSK_TEST_BUILDDIR='"$(abs_top_builddir)"'
TEST_LDADD = tests/libsktest.la core/libseckillcore.la $(CHECK_LIBS) $(HIREDIS_LIBS) $(CURL_LIBS) $(MARIADB_LIBS) $(JANSSON_LIBS)

check_LTLIBRARIES += tests/libsktest.la
tests_libsktest_la_SOURCES = tests/support.c tests/support.h
tests_libsktest_la_CFLAGS = $(TEST_CFLAGS)

# In-tree test plugins for the loader: deliberately broken ones and a good one.
TEST_PLUGIN_LDFLAGS = -module -avoid-version -shared -rpath /nowhere $(SK_LDFLAGS)
check_LTLIBRARIES += tests/plugins/bad_abi.la tests/plugins/wrong_kind.la \
	tests/plugins/no_symbol.la tests/plugins/bad_magic.la tests/plugins/fail_create.la \
	tests/plugins/newer_minor.la
tests_plugins_bad_abi_la_SOURCES = tests/plugins/bad_abi.c
tests_plugins_bad_abi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_wrong_kind_la_SOURCES = tests/plugins/wrong_kind.c
tests_plugins_wrong_kind_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_no_symbol_la_SOURCES = tests/plugins/no_symbol.c
tests_plugins_no_symbol_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_bad_magic_la_SOURCES = tests/plugins/bad_magic.c
tests_plugins_bad_magic_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_fail_create_la_SOURCES = tests/plugins/fail_create.c
tests_plugins_fail_create_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_newer_minor_la_SOURCES = tests/plugins/newer_minor.c
tests_plugins_newer_minor_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)

SK_SUITES = tests/check_timeutil tests/check_jwt tests/check_order_no tests/check_config tests/check_plugin_host \
	tests/check_redis_stock tests/check_db tests/check_http tests/check_admin_api \
	tests/check_scheduler tests/check_client_api tests/check_orders
check_PROGRAMS += tests/check_timeutil tests/check_jwt tests/check_order_no tests/check_config tests/check_plugin_host \
	tests/check_redis_stock tests/check_db tests/check_http tests/check_admin_api \
	tests/check_scheduler tests/check_client_api tests/check_orders
TESTS += $(SK_SUITES)

tests_check_timeutil_SOURCES = tests/check_timeutil.c
tests_check_timeutil_CFLAGS = $(TEST_CFLAGS)
tests_check_timeutil_LDADD = $(TEST_LDADD)
tests_check_jwt_SOURCES = tests/check_jwt.c
tests_check_jwt_CFLAGS = $(TEST_CFLAGS)
tests_check_jwt_LDADD = $(TEST_LDADD)
tests_check_order_no_SOURCES = tests/check_order_no.c
tests_check_order_no_CFLAGS = $(TEST_CFLAGS)
tests_check_order_no_LDADD = $(TEST_LDADD)
tests_check_config_SOURCES = tests/check_config.c
tests_check_config_CFLAGS = $(TEST_CFLAGS)
tests_check_config_LDADD = $(TEST_LDADD)
tests_check_plugin_host_SOURCES = tests/check_plugin_host.c
tests_check_plugin_host_CFLAGS = $(TEST_CFLAGS)
tests_check_plugin_host_LDADD = $(TEST_LDADD)
tests_check_redis_stock_SOURCES = tests/check_redis_stock.c
tests_check_redis_stock_CFLAGS = $(TEST_CFLAGS)
tests_check_redis_stock_LDADD = $(TEST_LDADD)
tests_check_db_SOURCES = tests/check_db.c
tests_check_db_CFLAGS = $(TEST_CFLAGS)
tests_check_db_LDADD = $(TEST_LDADD)
tests_check_http_SOURCES = tests/check_http.c
tests_check_http_CFLAGS = $(TEST_CFLAGS)
tests_check_http_LDADD = $(TEST_LDADD)
tests_check_admin_api_SOURCES = tests/check_admin_api.c
tests_check_admin_api_CFLAGS = $(TEST_CFLAGS)
tests_check_admin_api_LDADD = $(TEST_LDADD)
tests_check_scheduler_SOURCES = tests/check_scheduler.c
tests_check_scheduler_CFLAGS = $(TEST_CFLAGS)
tests_check_scheduler_LDADD = $(TEST_LDADD)
tests_check_client_api_SOURCES = tests/check_client_api.c
tests_check_client_api_CFLAGS = $(TEST_CFLAGS)
tests_check_client_api_LDADD = $(TEST_LDADD)
tests_check_orders_SOURCES = tests/check_orders.c
tests_check_orders_CFLAGS = $(TEST_CFLAGS)
tests_check_orders_LDADD = $(TEST_LDADD)

# The redis_streams queue plugin (and the reservation-log reader under it).
SK_SUITES += tests/check_queue_redis_streams
check_PROGRAMS += tests/check_queue_redis_streams
tests_check_queue_redis_streams_SOURCES = tests/check_queue_redis_streams.c
tests_check_queue_redis_streams_CFLAGS = $(TEST_CFLAGS)
tests_check_queue_redis_streams_LDADD = $(TEST_LDADD)

# seckill-console without a terminal: model, formatting, form, keys, settings and
# its network layer (tests/console_e2e.sh drives the console itself under tmux).
SK_SUITES += tests/check_console_model
check_PROGRAMS += tests/check_console_model
tests_check_console_model_SOURCES = tests/check_console_model.c
tests_check_console_model_CFLAGS = $(TEST_CFLAGS)
tests_check_console_model_LDADD = tui/libskconsole.la $(TEST_LDADD)

# The suites find the built daemon and plugins through these.
AM_TESTS_ENVIRONMENT = SK_DAEMON='$(abs_top_builddir)/core/seckilld' \
	SK_PLUGIN_BUILD_DIR='$(abs_top_builddir)/plugins/.libs' \
	SK_TEST_PLUGIN_DIR='$(abs_top_builddir)/tests/plugins/.libs' \
	CK_DEFAULT_TIMEOUT=60 ; export SK_DAEMON SK_PLUGIN_BUILD_DIR SK_TEST_PLUGIN_DIR CK_DEFAULT_TIMEOUT;

# The kafka_rest queue plugin, against the Kafka REST Proxy emulator
# (scripts/kafka-rest-emulator.py, started by the suite) and the stack's Redis (db 11).
SK_SUITES += tests/check_queue_kafka_rest
check_PROGRAMS += tests/check_queue_kafka_rest
tests_check_queue_kafka_rest_SOURCES = tests/check_queue_kafka_rest.c
tests_check_queue_kafka_rest_CFLAGS = $(TEST_CFLAGS)
tests_check_queue_kafka_rest_LDADD = $(TEST_LDADD)

# The alipay payment plugin: its signing and value code compiled in (vectors, the
# openssl command line), the plugin through the host, and the gateway emulator
# (scripts/alipay-emulator.py, started by the suite).
SK_SUITES += tests/check_payment_alipay
check_PROGRAMS += tests/check_payment_alipay
tests_check_payment_alipay_SOURCES = tests/check_payment_alipay.c \
	plugins/payment/alipay/params.c plugins/payment/alipay/sign.c
tests_check_payment_alipay_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS)
tests_check_payment_alipay_LDADD = $(TEST_LDADD) $(OPENSSL_LIBS)

# Payment and timeouts end to end: the daemon with the redis_streams queue and the
# alipay payment plugin against the Alipay gateway emulator (started by the suite),
# the stack's Redis (db 14) and MariaDB (sktest_payment).
SK_SUITES += tests/check_payment
check_PROGRAMS += tests/check_payment
tests_check_payment_SOURCES = tests/check_payment.c
tests_check_payment_CFLAGS = $(TEST_CFLAGS)
tests_check_payment_LDADD = $(TEST_LDADD)
