/* Tests for client/options.c and client/status.c: target parsing, the bounds of every typed
 * setter, call options and metadata rules, status names, the gRPC mapping and the version. */
#include "internal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_target_parse_accepts_names_ipv4_and_bracketed_ipv6)
{
    char host[BCL_MAX_HOST + 1];
    int port;
    ck_assert_int_eq(bcl_target_parse("localhost:8443", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "localhost");
    ck_assert_int_eq(port, 8443);
    ck_assert_int_eq(bcl_target_parse("bastion.example.com", host, sizeof(host), &port), 0);
    ck_assert_int_eq(port, BCL_DEFAULT_PORT);
    ck_assert_int_eq(bcl_target_parse("127.0.0.1:1", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 1);
    ck_assert_int_eq(bcl_target_parse("[::1]:65535", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 65535);
    ck_assert_int_eq(bcl_target_parse("[fe80::1]", host, sizeof(host), &port), 0);
    ck_assert_int_eq(port, BCL_DEFAULT_PORT);
    ck_assert_int_eq(bcl_target_parse("::1", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
}
END_TEST

START_TEST(test_target_parse_refuses_malformed_targets)
{
    static const char *const bad[] = {
        "",        ":8443",   "host:",       "host:0",      "host:65536",  "host:84x3",
        "host:-1", "[::1",    "[::1]x",      "[]:1",        "[nothost]:1", "a:b:c",
        "ho st:1", "-host:1", "host/path:1", "host:123456", "user@host:1", "[1.2.3.4]:1",
    };
    char host[BCL_MAX_HOST + 1];
    int port;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(bcl_target_parse(bad[i], host, sizeof(host), &port) == -1, "'%s' accepted",
                      bad[i]);
    ck_assert_int_eq(bcl_target_parse(NULL, host, sizeof(host), &port), -1);
}
END_TEST

START_TEST(test_options_defaults_and_setter_bounds)
{
    bastion_options *o = NULL;
    ck_assert_int_eq(bastion_options_new(&o), BASTION_OK);
    ck_assert_str_eq(o->host, "localhost");
    ck_assert_int_eq(o->port, 8443);
    ck_assert_uint_eq(o->max_message_bytes, 4u << 20);
    ck_assert_int_eq(o->connect_timeout_ms, 10000);
    ck_assert_int_eq(o->keepalive_interval_ms, 30000);

    ck_assert_int_eq(bastion_options_set_target(o, "nope:0"), BASTION_E_ARGUMENT);
    ck_assert_str_eq(o->host, "localhost"); /* a refused value changes nothing */
    ck_assert_int_eq(bastion_options_set_target(o, "10.0.0.1:9443"), BASTION_OK);
    ck_assert_int_eq(o->port, 9443);

    ck_assert_int_eq(bastion_options_set_default_deadline_ms(o, -1), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_default_deadline_ms(o, 0), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_default_deadline_ms(o, BCL_MAX_DEADLINE_MS + 1),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_connect_timeout_ms(o, 0), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_connect_timeout_ms(o, 250), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_keepalive(o, 999, 1000), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_keepalive(o, 0, 1000), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_keepalive(o, 1000, 0), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_max_message_bytes(o, 1023), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_max_message_bytes(o, (64u << 20) + 1), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_max_message_bytes(o, 1024), BASTION_OK);

    /* Certificate and key go together. */
    ck_assert_int_eq(bastion_options_set_client_cert(o, "a.crt", NULL), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_client_cert(o, "a.crt", "a.key"), BASTION_OK);
    ck_assert_str_eq(o->key_file, "a.key");
    ck_assert_int_eq(bastion_options_set_client_cert(o, NULL, NULL), BASTION_OK);
    ck_assert_ptr_null(o->cert_file);

    ck_assert_int_eq(bastion_options_set_server_name(o, "bad name"), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_server_name(o, "localhost"), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_server_name(o, NULL), BASTION_OK);

    ck_assert_int_eq(bastion_options_set_bearer_token(o, "tok\nen"), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_bearer_token(o, ""), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_options_set_bearer_token(o, "eyJ.abc.def"), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_api_key(o, "bk_123"), BASTION_OK);

    ck_assert_int_eq(bastion_options_set_target(NULL, "x:1"), BASTION_E_ARGUMENT);
    bastion_options_free(o);
    bastion_options_free(NULL);
}
END_TEST

START_TEST(test_call_options_metadata_rules_and_limits)
{
    bastion_call_options *co = NULL, *copy = NULL;
    char name[16];
    ck_assert_int_eq(bastion_call_options_new(&co), BASTION_OK);
    ck_assert_int_eq(bastion_call_options_add_metadata(co, "x-tenant", "acme"), BASTION_OK);
    ck_assert_int_eq(bastion_call_options_add_metadata(co, "authorization", "Bearer x"),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_call_options_add_metadata(co, "grpc-timeout", "1S"),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_call_options_add_metadata(co, "x-a", "line\r\nx: y"),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_call_options_set_deadline_ms(co, -5), BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_call_options_set_deadline_ms(co, 1500), BASTION_OK);
    ck_assert_int_eq(bastion_call_options_set_bearer_token(co, "t"), BASTION_OK);
    for (int i = 1; i < BCL_MAX_METADATA; i++) {
        snprintf(name, sizeof(name), "x-m%d", i);
        ck_assert_int_eq(bastion_call_options_add_metadata(co, name, "v"), BASTION_OK);
    }
    ck_assert_int_eq(bastion_call_options_add_metadata(co, "x-one-too-many", "v"),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bcl_call_options_copy(&copy, co), BASTION_OK);
    ck_assert_uint_eq(copy->n_md, BCL_MAX_METADATA);
    ck_assert_str_eq(copy->token, "t");
    ck_assert_int_eq(copy->deadline_ms, 1500);
    bastion_call_options_free(copy);
    bastion_call_options_free(co);

    /* The byte budget, independently of the count. */
    ck_assert_int_eq(bastion_call_options_new(&co), BASTION_OK);
    {
        char *v = malloc(BCL_MAX_METADATA_BYTES);
        memset(v, 'v', BCL_MAX_METADATA_BYTES - 100);
        v[BCL_MAX_METADATA_BYTES - 100] = '\0';
        ck_assert_int_eq(bastion_call_options_add_metadata(co, "x-big", v), BASTION_OK);
        ck_assert_int_eq(
            bastion_call_options_add_metadata(
                co, "x-big2",
                "0123456789012345678901234567890123456789012345678901234567890123456789"),
            BASTION_E_ARGUMENT);
        free(v);
    }
    bastion_call_options_free(co);
}
END_TEST

START_TEST(test_status_names_sentences_and_grpc_mapping)
{
    ck_assert_str_eq(bastion_status_name(BASTION_OK), "OK");
    ck_assert_str_eq(bastion_status_name(BASTION_UNAUTHENTICATED), "UNAUTHENTICATED");
    ck_assert_str_eq(bastion_status_name(BASTION_E_TLS), "E_TLS");
    ck_assert_str_eq(bastion_status_name((bastion_status)77), "UNKNOWN_STATUS");
    for (int s = 0; s <= 16; s++)
        ck_assert_str_ne(bastion_status_name((bastion_status)s), "UNKNOWN_STATUS");
    for (int s = BASTION_E_ARGUMENT; s <= BASTION_E_CLOSED; s++) {
        ck_assert_str_ne(bastion_status_name((bastion_status)s), "UNKNOWN_STATUS");
        ck_assert_int_le(bastion_status_grpc((bastion_status)s), BASTION_UNAUTHENTICATED);
    }
    ck_assert_str_ne(bastion_strerror(BASTION_E_CONNECT), bastion_strerror(BASTION_E_TLS));
    ck_assert_int_eq(bastion_status_grpc(BASTION_E_CONNECT), BASTION_UNAVAILABLE);
    ck_assert_int_eq(bastion_status_grpc(BASTION_E_TLS), BASTION_UNAVAILABLE);
    ck_assert_int_eq(bastion_status_grpc(BASTION_E_PROTOCOL), BASTION_INTERNAL);
    ck_assert_int_eq(bastion_status_grpc(BASTION_NOT_FOUND), BASTION_NOT_FOUND);
    ck_assert_int_eq(bastion_status_grpc((bastion_status)77), BASTION_UNKNOWN);
    /* The enum is append-only: these values are part of the ABI. */
    ck_assert_int_eq(BASTION_E_ARGUMENT, 100);
    ck_assert_int_eq(BASTION_E_TLS, 103);
    ck_assert_int_eq(BASTION_E_CLOSED, 106);
}
END_TEST

START_TEST(test_version_macro_matches_the_library)
{
    ck_assert_uint_eq(bastion_version_num(), BASTION_VERSION_NUM);
    ck_assert_str_eq(bastion_version(), BASTION_VERSION);
    ck_assert_uint_eq(BASTION_VERSION_NUM >> 16, (unsigned)strtoul(BASTION_VERSION, NULL, 10));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_options");
    TCase *tc = tcase_create("options");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_target_parse_accepts_names_ipv4_and_bracketed_ipv6);
    tcase_add_test(tc, test_target_parse_refuses_malformed_targets);
    tcase_add_test(tc, test_options_defaults_and_setter_bounds);
    tcase_add_test(tc, test_call_options_metadata_rules_and_limits);
    tcase_add_test(tc, test_status_names_sentences_and_grpc_mapping);
    tcase_add_test(tc, test_version_macro_matches_the_library);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
