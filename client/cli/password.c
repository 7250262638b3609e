/* Reading a password for `bastion login` and `bastion users hash`: from the controlling
 * terminal with echo off (termios), or from standard input with --password-stdin. Never from
 * the command line, where every user of the machine could read it (/proc/PID/cmdline).
 *
 * The bytes go straight from read(2) into the caller's buffer: no stdio buffer keeps a copy the
 * caller could not wipe. While echo is off, the usual terminating signals restore the terminal
 * before the program ends, so an interrupted prompt does not leave the shell without echo. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* What the signal handler needs to put the terminal back. */
static volatile sig_atomic_t echo_off;
static int tty_fd = -1;
static struct termios saved_termios;

static const int restore_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define N_RESTORE (sizeof(restore_signals) / sizeof(restore_signals[0]))

/* Restores the terminal, then lets the signal do what it would have done. Only
 * async-signal-safe calls (tcsetattr, sigaction, raise). */
static void restore_and_reraise(int sig)
{
    struct sigaction dfl;
    if (echo_off)
        tcsetattr(tty_fd, TCSAFLUSH, &saved_termios);
    echo_off = 0;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

struct echo_guard {
    struct sigaction old[N_RESTORE];
    struct sigaction old_tstp;
    int active;
};

/* Turns echo off on fd (a terminal), keeping the newline echoed so the cursor moves on. */
static int echo_disable(int fd, struct echo_guard *g)
{
    struct termios t;
    struct sigaction sa, ign;

    memset(g, 0, sizeof(*g));
    if (tcgetattr(fd, &saved_termios) != 0)
        return -1;
    tty_fd = fd;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_RESTORE; i++)
        sigaction(restore_signals[i], &sa, &g->old[i]);
    /* Suspending with echo off would leave the shell without echo until we resume. */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGTSTP, &ign, &g->old_tstp);
    t = saved_termios;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    t.c_lflag |= ECHONL;
    echo_off = 1;
    if (tcsetattr(fd, TCSAFLUSH, &t) != 0) {
        echo_off = 0;
        for (size_t i = 0; i < N_RESTORE; i++)
            sigaction(restore_signals[i], &g->old[i], NULL);
        sigaction(SIGTSTP, &g->old_tstp, NULL);
        return -1;
    }
    g->active = 1;
    return 0;
}

static void echo_restore(struct echo_guard *g)
{
    if (!g->active)
        return;
    tcsetattr(tty_fd, TCSAFLUSH, &saved_termios);
    echo_off = 0;
    for (size_t i = 0; i < N_RESTORE; i++)
        sigaction(restore_signals[i], &g->old[i], NULL);
    sigaction(SIGTSTP, &g->old_tstp, NULL);
    g->active = 0;
}

/* Reads up to a newline or end of input (a trailing CR is dropped). Returns the length, -1 on a
 * read error, -2 when the line is longer than CLI_PASSWORD_MAX bytes or does not fit in cap - 1
 * bytes. */
static long read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    int too_long = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0 || c == '\n')
            break;
        /* Past the end: read on to the end of the line, so that its rest is not taken for the
         * next answer, and keep nothing more. */
        if (len + 1 >= cap)
            too_long = 1;
        else
            buf[len++] = c;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    if (too_long || len > CLI_PASSWORD_MAX)
        return -2;
    return (long)len;
}

static void write_all(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

int cli_read_password(int from_stdin, const char *prompt, char *buf, size_t cap, char *why,
                      size_t why_len)
{
    struct echo_guard g;
    int fd, opened = 0, is_tty;
    long n;

    buf[0] = '\0';
    if (cap < CLI_PASSWORD_MAX + 2) {
        snprintf(why, why_len, "internal error: password buffer too small");
        return -1;
    }
    if (from_stdin) {
        fd = STDIN_FILENO;
    } else {
        fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(why, why_len,
                     "no terminal to read the password from: pipe it in with --password-stdin");
            return -1;
        }
        opened = 1;
    }
    is_tty = isatty(fd);
    if (is_tty) {
        /* Prompt on the terminal itself: stdout may be a pipe into another program. */
        if (!from_stdin)
            write_all(fd, prompt);
        else
            write_all(STDERR_FILENO, prompt);
        if (echo_disable(fd, &g) != 0) {
            snprintf(why, why_len, "cannot turn off the terminal's echo: %s", strerror(errno));
            if (opened)
                close(fd);
            return -1;
        }
    }
    /* One byte more than the maximum, so that a longer password is refused, not cut. */
    n = read_line(fd, buf, CLI_PASSWORD_MAX + 2);
    if (is_tty)
        echo_restore(&g);
    if (opened)
        close(fd);
    if (n == -1)
        snprintf(why, why_len, "cannot read the password: %s", strerror(errno));
    else if (n == -2)
        snprintf(why, why_len, "the password is longer than %d bytes", CLI_PASSWORD_MAX);
    else if (n == 0)
        snprintf(why, why_len, "empty password%s",
                 from_stdin && !is_tty ? " (nothing on standard input)" : "");
    if (n <= 0) {
        memset(buf, 0, cap);
        return -1;
    }
    return 0;
}
