/* Tests for common/secretfile.c: the permission, owner, type and size rules for secret files,
 * wiping on free, and the plain bst_file_read. Each test works in its own temporary directory. */
#include "secretfile.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_secretfile.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes the files the tests create (the names are fixed, so no directory walk is needed). */
static void remove_dir(void)
{
    static const char *const names[] = {"key", "link", "sub", "big", "max", "cert"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static const char *path_of(const char *name)
{
    static char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

/* Creates dir/name with contents and exactly `mode` (chmod after creation, so the umask does
 * not interfere) and returns its path. */
static const char *make_file(const char *name, const char *contents, mode_t mode)
{
    const char *p = path_of(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(contents);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, contents, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
    return p;
}

START_TEST(test_secret_0600_file_is_read_exactly)
{
    static const char key[] = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n";
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_file("key", key, 0600), &s, &err), BST_OK);
    ck_assert_uint_eq(s.len, strlen(key));
    ck_assert_mem_eq(s.data, key, strlen(key));
    ck_assert_int_eq(s.data[s.len], '\0');
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_secret_0400_file_is_read)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_file("key", "k", 0400), &s, &err), BST_OK);
    ck_assert_uint_eq(s.len, 1);
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_secret_empty_file_is_read_as_empty)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_file("key", "", 0600), &s, &err), BST_OK);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_ptr_nonnull(s.data);
    ck_assert_int_eq(s.data[0], '\0');
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_secret_group_or_other_bits_are_refused_naming_the_mode)
{
    static const struct {
        mode_t mode;
        const char *text;
    } cases[] = {{0640, "mode 0640"}, {0604, "mode 0604"}, {0644, "mode 0644"},
                 {0610, "mode 0610"}, {0601, "mode 0601"}, {0620, "mode 0620"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bst_secret s = {(unsigned char *)"sentinel", 99};
        struct bst_err err = {BST_OK, ""};

        ck_assert_int_eq(bst_secret_read(make_file("key", "secret", cases[i].mode), &s, &err),
                         BST_PERMISSION_DENIED);
        ck_assert_int_eq(err.code, BST_PERMISSION_DENIED);
        ck_assert_msg(strstr(err.msg, cases[i].text) != NULL, "\"%s\" does not name %s", err.msg,
                      cases[i].text);
        ck_assert_ptr_null(s.data);
        ck_assert_uint_eq(s.len, 0);
    }
}
END_TEST

START_TEST(test_secret_directory_is_refused)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(mkdir(path_of("sub"), 0700), 0);
    ck_assert_int_eq(bst_secret_read(path_of("sub"), &s, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    ck_assert_ptr_null(s.data);
}
END_TEST

START_TEST(test_secret_missing_file_is_not_found)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(path_of("absent"), &s, &err), BST_NOT_FOUND);
    ck_assert_int_eq(err.code, BST_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "absent"));
    ck_assert_ptr_null(s.data);
}
END_TEST

START_TEST(test_secret_symlink_to_0600_file_is_followed)
{
    struct bst_secret s;
    struct bst_err err;

    /* Kubernetes mounts secrets as symlinks into a ..data directory. */
    make_file("key", "via link", 0600);
    ck_assert_int_eq(symlink("key", path_of("link")), 0);
    ck_assert_int_eq(bst_secret_read(path_of("link"), &s, &err), BST_OK);
    ck_assert_str_eq((const char *)s.data, "via link");
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_secret_symlink_to_0644_file_is_judged_by_the_target)
{
    struct bst_secret s;
    struct bst_err err;

    /* The link itself is 0777; the target's mode is what counts. */
    make_file("key", "via link", 0644);
    ck_assert_int_eq(symlink("key", path_of("link")), 0);
    ck_assert_int_eq(bst_secret_read(path_of("link"), &s, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_nonnull(strstr(err.msg, "mode 0644"));
}
END_TEST

static const char *make_sparse(const char *name, off_t size, mode_t mode)
{
    const char *p = path_of(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
    return p;
}

START_TEST(test_secret_over_the_size_limit_is_refused)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_sparse("big", BST_SECRET_MAX_BYTES + 1, 0600), &s, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "larger than"));
    ck_assert_ptr_null(s.data);
    ck_assert_int_eq(bst_secret_read(make_sparse("big", (off_t)1 << 40, 0600), &s, &err),
                     BST_RESOURCE_EXHAUSTED);
}
END_TEST

START_TEST(test_secret_at_the_size_limit_is_read)
{
    struct bst_secret s;
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_sparse("max", BST_SECRET_MAX_BYTES, 0600), &s, &err),
                     BST_OK);
    ck_assert_uint_eq(s.len, BST_SECRET_MAX_BYTES);
    ck_assert_int_eq(s.data[0], 0);
    ck_assert_int_eq(s.data[s.len - 1], 0);
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_secret_free_clears_the_struct_and_tolerates_repeats)
{
    struct bst_secret s;
    struct bst_secret zero = {NULL, 0};
    struct bst_err err;

    ck_assert_int_eq(bst_secret_read(make_file("key", "hunter2", 0600), &s, &err), BST_OK);
    ck_assert_ptr_nonnull(s.data);
    bst_secret_free(&s);
    ck_assert_ptr_null(s.data);
    ck_assert_uint_eq(s.len, 0);
    bst_secret_free(&s); /* a second free is a no-op */
    bst_secret_free(&zero);
    bst_secret_free(NULL);
}
END_TEST

START_TEST(test_secret_owned_by_another_user_is_refused)
{
    struct bst_secret s;
    struct bst_err err;
    const char *p = make_file("key", "secret", 0600);
    struct stat st;

    if (geteuid() != 0) {
        /* Only root can give a file away. What can still be checked: a 0600 file we own is
         * accepted, and the refusal below would carry our uid in its message. */
        fprintf(stderr,
                "check_secretfile: not running as root (euid %u): cannot chown a file "
                "to a foreign uid, so only the own-file half of the owner rule is "
                "tested\n",
                (unsigned)geteuid());
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_uid, geteuid());
        ck_assert_int_eq(bst_secret_read(p, &s, &err), BST_OK);
        bst_secret_free(&s);
        return;
    }
    ck_assert_int_eq(chown(p, 12345, 12345), 0);
    ck_assert_int_eq(bst_secret_read(p, &s, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_nonnull(strstr(err.msg, "owned by uid 12345"));
    ck_assert_ptr_null(s.data);
    /* Owned by root is accepted (we are root here, so this is also "owned by us"). */
    ck_assert_int_eq(chown(p, 0, 0), 0);
    ck_assert_int_eq(bst_secret_read(p, &s, &err), BST_OK);
    bst_secret_free(&s);
}
END_TEST

START_TEST(test_file_read_accepts_0644_and_reads_exactly)
{
    static const char cert[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    char *buf = NULL;
    size_t len = 0;
    struct bst_err err;

    ck_assert_int_eq(bst_file_read(make_file("cert", cert, 0644), 4096, &buf, &len, &err), BST_OK);
    ck_assert_uint_eq(len, strlen(cert));
    ck_assert_str_eq(buf, cert);
    free(buf);
}
END_TEST

START_TEST(test_file_read_refuses_over_max_missing_and_directories)
{
    char *buf = (char *)"sentinel";
    size_t len = 99;
    struct bst_err err;

    ck_assert_int_eq(bst_file_read(make_file("cert", "0123456789", 0644), 9, &buf, &len, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bst_file_read(path_of("cert"), 10, &buf, &len, &err), BST_OK);
    free(buf);
    ck_assert_int_eq(bst_file_read(path_of("absent"), 10, &buf, &len, &err), BST_NOT_FOUND);
    ck_assert_int_eq(mkdir(path_of("sub"), 0755), 0);
    ck_assert_int_eq(bst_file_read(path_of("sub"), 10, &buf, &len, &err), BST_PERMISSION_DENIED);
}
END_TEST

static Suite *secretfile_suite(void)
{
    Suite *s = suite_create("secretfile");
    TCase *tc = tcase_create("secret");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, test_secret_0600_file_is_read_exactly);
    tcase_add_test(tc, test_secret_0400_file_is_read);
    tcase_add_test(tc, test_secret_empty_file_is_read_as_empty);
    tcase_add_test(tc, test_secret_group_or_other_bits_are_refused_naming_the_mode);
    tcase_add_test(tc, test_secret_directory_is_refused);
    tcase_add_test(tc, test_secret_missing_file_is_not_found);
    tcase_add_test(tc, test_secret_symlink_to_0600_file_is_followed);
    tcase_add_test(tc, test_secret_symlink_to_0644_file_is_judged_by_the_target);
    tcase_add_test(tc, test_secret_over_the_size_limit_is_refused);
    tcase_add_test(tc, test_secret_at_the_size_limit_is_read);
    tcase_add_test(tc, test_secret_free_clears_the_struct_and_tolerates_repeats);
    tcase_add_test(tc, test_secret_owned_by_another_user_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, test_file_read_accepts_0644_and_reads_exactly);
    tcase_add_test(tc, test_file_read_refuses_over_max_missing_and_directories);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(secretfile_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
