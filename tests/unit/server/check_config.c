/* Unit tests of the bastiond configuration (server/config.c): the shipped example loads, and
 * mistakes are refused with file:line:column. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/bastion-config-XXXXXX";

static const char *write_config(const char *text)
{
    static char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/bastion.yaml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/bastion.yaml", dir);
    unlink(path);
    rmdir(dir);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

START_TEST(test_config_shipped_example_loads)
{
    char path[512];
    struct config cfg;
    struct bst_err err;
    const char *src = getenv("BASTION_SRC");
    ck_assert_ptr_nonnull(src);
    snprintf(path, sizeof(path), "%s/configs/bastion.yaml", src);
    ck_assert_msg(config_load(path, &cfg, &err) == BST_OK, "%s", err.msg);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8443");
    ck_assert_int_eq(cfg.tls_client_auth, CLIENT_AUTH_REQUIRE);
    ck_assert_int_eq(cfg.max_message_bytes, 4 * 1024 * 1024);
    ck_assert_int_eq(cfg.idle_timeout_ms, 300000);
    /* Relative paths are resolved against the config file's directory. */
    ck_assert_ptr_nonnull(strstr(cfg.tls_cert, "/configs/../certs/dev/server.crt"));
    config_dispose(&cfg);
}
END_TEST

START_TEST(test_config_defaults_are_secure)
{
    struct config cfg;
    struct bst_err err;
    const char *p = write_config("tls:\n  cert: /x.crt\n  key: /x.key\n");
    ck_assert_msg(config_load(p, &cfg, &err) == BST_OK, "%s", err.msg);
    ck_assert_int_eq(cfg.tls_client_auth, CLIENT_AUTH_REQUIRE);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8443"); /* loopback unless told otherwise */
    ck_assert_int_eq(cfg.tls_session_lifetime_ms, 300000);
    ck_assert_int_eq(cfg.max_concurrent_streams, 100);
    ck_assert_int_eq(cfg.max_header_list_bytes, 16384);
    config_dispose(&cfg);
}
END_TEST

START_TEST(test_config_unknown_key_names_its_position)
{
    struct config cfg;
    struct bst_err err;
    const char *p = write_config("tls:\n  cert: /x.crt\n  key: /x.key\n  clientca: /ca\n");
    ck_assert_int_eq(config_load(p, &cfg, &err), BST_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, ":4:3") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "clientca") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_config_required_tls_section)
{
    struct config cfg;
    struct bst_err err;
    const char *p = write_config("listen: \"127.0.0.1:1\"\n");
    ck_assert_int_eq(config_load(p, &cfg, &err), BST_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "tls") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_config_bad_values_refused)
{
    const char *cases[] = {
        "tls:\n  cert: /x\n  key: /x\n  client_auth: maybe\n",
        "tls:\n  cert: /x\n  key: /x\nlimits:\n  max_message_bytes: 1GiB\n",
        "tls:\n  cert: /x\n  key: /x\nlimits:\n  max_concurrent_streams: 0\n",
        "tls:\n  cert: /x\n  key: /x\nlimits:\n  idle_timeout: forever\n",
        "tls:\n  cert: /x\n  key: /x\nworkers: lots\n",
        "tls:\n  cert: /x\n  key: /x\nlisten: on\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        struct bst_err err;
        const char *p = write_config(cases[i]);
        ck_assert_msg(config_load(p, &cfg, &err) == BST_INVALID_ARGUMENT, "accepted: %s", cases[i]);
        ck_assert_msg(strstr(err.msg, "bastion.yaml:") != NULL, "%s", err.msg);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_shipped_example_loads);
    tcase_add_test(tc, test_config_defaults_are_secure);
    tcase_add_test(tc, test_config_unknown_key_names_its_position);
    tcase_add_test(tc, test_config_required_tls_section);
    tcase_add_test(tc, test_config_bad_values_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
