/* ptyrun.c -- runs a command on a new pseudo-terminal and relays bytes: our stdin goes to
 * the terminal as typed keys (so "\x03" is Ctrl-C and "\x04" Ctrl-D, through the line
 * discipline), everything the command writes to the terminal comes out on our stdout.
 * Exits with the command's status (128+N for a signal) once it has exited and its output
 * was drained. For the REPL tests in tests/cli: node drives it through pipes.
 *
 * usage: ptyrun [-c COLS] [-t SECONDS] -- COMMAND [ARGS...]
 *   -c  terminal width (default 200, so answers do not wrap)
 *   -t  kill the command (SIGKILL) after SECONDS; exit 124 (default 120) */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *buf, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w, n -= w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int cols = 200, opt;
    double limit = 120;
    while ((opt = getopt(argc, argv, "+c:t:")) != -1) {
        if (opt == 'c')
            cols = atoi(optarg);
        else if (opt == 't')
            limit = atof(optarg);
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: ptyrun [-c COLS] [-t SECONDS] -- COMMAND [ARGS...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct winsize ws = {.ws_row = 50, .ws_col = (unsigned short)cols};
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        perror("ptyrun: forkpty");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[optind], argv + optind);
        perror("ptyrun: exec");
        _exit(127);
    }
    double deadline = now_s() + limit;
    bool in_open = true;
    int status = -1;
    char buf[4096];
    for (;;) {
        struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = in_open ? 0 : -1, .events = POLLIN}};
        int left_ms = (int)((deadline - now_s()) * 1000);
        if (left_ms <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fprintf(stderr, "ptyrun: timed out after %.0f s\n", limit);
            return 124;
        }
        int r = poll(p, 2, left_ms < 200 ? left_ms : 200);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0)
                write_all(1, buf, n);
            else if (n < 0 && errno == EINTR)
                continue;
            else
                break; /* EIO: the command and everything holding the terminal are gone */
        }
        if (r > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n > 0)
                write_all(master, buf, n);
            else
                in_open = false;
        }
        if (status < 0 && waitpid(pid, &status, WNOHANG) == pid) {
            /* drain what is left, briefly */
            for (int i = 0; i < 20; i++) {
                struct pollfd q = {.fd = master, .events = POLLIN};
                if (poll(&q, 1, 50) <= 0)
                    break;
                ssize_t n = read(master, buf, sizeof buf);
                if (n <= 0)
                    break;
                write_all(1, buf, n);
            }
            break;
        }
    }
    if (status < 0)
        waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
