/* Tests for rbac/tool.c: bastion-rbac check/explain/lint run as a separate process (the binary
 * built next to this test), checking exit codes (0 allow / 1 deny / 2 error; lint 0 clean /
 * 1 findings / 2 error) and what it prints. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tool[PATH_MAX];
static char policy[PATH_MAX];

static void setup(void)
{
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *src = getenv("BASTION_SRC");
    char *slash;

    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    slash = strrchr(self, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    snprintf(tool, sizeof(tool), "%s/bastion-rbac", self);
    ck_assert_msg(access(tool, X_OK) == 0, "%s is not built", tool);
    ck_assert_ptr_nonnull(src);
    snprintf(policy, sizeof(policy), "%s/configs/rbac-policies.yaml", src);
}

/* Runs the tool with argv (NULL-terminated, without argv[0]); returns the exit status and
 * stdout + stderr in out (caller frees). */
static int run(char **out, const char *const *args)
{
    const char *argv[32];
    int fds[2], status;
    size_t len = 0, cap = 4096;
    pid_t pid;
    char *buf = malloc(cap);

    ck_assert_ptr_nonnull(buf);
    argv[0] = tool;
    for (int i = 0; i < 30 && (argv[i + 1] = args[i]) != NULL; i++)
        ;
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(tool, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        n = read(fds[0], buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    *out = buf;
    return WEXITSTATUS(status);
}

static void expect_has(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "missing '%s' in:\n%s", want, text);
}

START_TEST(test_rbac_tool_check_exits_0_on_allow_1_on_deny)
{
    char *out;
    const char *allow[] = {"check",
                           "--policy",
                           policy,
                           "--subject",
                           "cert:spiffe://bastion.local/user/developer",
                           "--permission",
                           "k8s:pods:list",
                           "--namespace",
                           "feature-login",
                           NULL};
    const char *deny[] = {"check",
                          "--policy",
                          policy,
                          "--subject",
                          "cert:spiffe://bastion.local/user/developer",
                          "--permission",
                          "k8s:pods:delete",
                          "-n",
                          "production",
                          NULL};
    const char *trap[] = {"check",
                          "--policy",
                          policy,
                          "--subject",
                          "cert:spiffe://bastion.local/user/developer",
                          "--permission",
                          "k8s:pods:list",
                          "-n",
                          "feature-x/../prod",
                          NULL};
    const char *empty[] = {"check",
                           "--policy",
                           policy,
                           "--subject",
                           "cert:spiffe://bastion.local/user/admin",
                           "--permission",
                           "k8s:pods:list",
                           "-n",
                           "",
                           NULL};
    const char *tenant[] = {
        "check",           "--policy", policy,       "--subject", "apikey:ci",
        "--tenant",        "acme",     "--carries",  "k8s:*",     "--permission",
        "k8s:pods:delete", "-n",       "production", NULL};
    const char *carried[] = {
        "check",     "--policy", policy,         "--subject",       "apikey:ci", "--tenant", "acme",
        "--carries", "k8s:*",    "--permission", "k8s:pods:delete", "-n",        "acme-web", NULL};

    ck_assert_int_eq(run(&out, allow), 0);
    expect_has(out, "allow\nrule: role:developer via binding:developers\nreason: ");
    free(out);
    ck_assert_int_eq(run(&out, deny), 1);
    expect_has(out, "deny\nrule: no rule matched\n");
    free(out);
    ck_assert_int_eq(run(&out, trap), 1);
    expect_has(out, "rule: invalid namespace\n");
    free(out);
    ck_assert_int_eq(run(&out, empty), 1);
    expect_has(out, "rule: invalid namespace\n");
    free(out);
    ck_assert_int_eq(run(&out, tenant), 1);
    expect_has(out, "rule: tenant:acme confines to acme-*\n");
    free(out);
    ck_assert_int_eq(run(&out, carried), 0);
    expect_has(out, "rule: carried:k8s:* via api_key\n");
    free(out);
}
END_TEST

START_TEST(test_rbac_tool_exits_2_on_errors)
{
    char *out;
    char bad[] = "/tmp/check_rbac_tool.XXXXXX";
    int fd = mkstemp(bad);
    const char *no_perm[] = {"check", "--policy", policy, "--subject", "user:a", NULL};
    const char *bad_subject[] = {"check",   "--policy",     policy,          "--subject",
                                 "robot:a", "--permission", "k8s:pods:list", NULL};
    const char *bad_policy[] = {"check",        "--policy",      bad, "--subject", "user:a",
                                "--permission", "k8s:pods:list", NULL};
    const char *lint_bad[] = {"lint", bad, NULL};
    const char *nothing[] = {NULL};

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "roles:\n  - name: r\n    permissions: [k8s:po*]\n", 46), 46);
    close(fd);
    ck_assert_int_eq(run(&out, no_perm), 2);
    free(out);
    ck_assert_int_eq(run(&out, bad_subject), 2);
    free(out);
    ck_assert_int_eq(run(&out, bad_policy), 2);
    expect_has(out, ":3:19: a role: 'k8s:po*' is not a permission");
    free(out);
    ck_assert_int_eq(run(&out, lint_bad), 2);
    expect_has(out, ":3:19: ");
    free(out);
    ck_assert_int_eq(run(&out, nothing), 2);
    free(out);
    unlink(bad);
}
END_TEST

START_TEST(test_rbac_tool_lint_and_explain)
{
    char *out;
    const char *lint_ok[] = {"lint", policy, NULL};
    const char *lint_narrow[] = {"lint", policy, "--tools", "k8s:pods:list,k8s:pods:get", NULL};
    const char *explain[] = {"explain",
                             "--policy",
                             policy,
                             "--subject",
                             "cert:spiffe://bastion.local/user/admin",
                             "--permission",
                             "k8s:secrets:manage",
                             "-n",
                             "kube-system",
                             NULL};

    ck_assert_int_eq(run(&out, lint_ok), 0);
    expect_has(out, "0 findings\n");
    free(out);
    ck_assert_int_eq(run(&out, lint_narrow), 1);
    expect_has(out, "warning: deny rule 'protect-kube-system': no tool uses 'k8s:secrets:manage'");
    free(out);
    ck_assert_int_eq(run(&out, explain), 1);
    expect_has(out, "binding admins (line ");
    expect_has(out, "decision: DENY by deny:protect-kube-system: ");
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_tool");
    TCase *tc = tcase_create("tool");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rbac_tool_check_exits_0_on_allow_1_on_deny);
    tcase_add_test(tc, test_rbac_tool_exits_2_on_errors);
    tcase_add_test(tc, test_rbac_tool_lint_and_explain);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
