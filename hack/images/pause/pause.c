/* The pod sandbox's first process: it holds the pod's namespaces open and does nothing else.
 *
 * As PID 1 of the pod it must reap orphaned children (else zombies pile up) and exit on SIGTERM/SIGINT
 * itself: the kernel delivers no default-action signal to a PID 1 without a handler, so without one
 * every pod stop would wait for SIGKILL. Built with `gcc -static -O2 -s`, so the image needs nothing
 * but this binary. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
    (void)signo;
    _exit(0);
}

static void reap(int signo) {
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void handle(int signo, void (*handler)(int), int flags) {
    struct sigaction action = {0};
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, NULL) < 0) {
        perror("pause: sigaction");
        exit(1);
    }
}

int main(void) {
    if (getpid() != 1) {
        fputs("pause: warning: not running as PID 1\n", stderr);
    }
    handle(SIGTERM, stop, 0);
    handle(SIGINT, stop, 0);
    handle(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART);
    for (;;) {
        pause();
    }
}
