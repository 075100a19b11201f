#define _GNU_SOURCE
#include "cprocess.h"
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

pid_t alignscope_spawn(const char *path, char *const argv[], char *const envp[],
                       int stdin_fd, int stdout_fd, int stderr_fd, int new_group) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;  /* parent (or -1 with errno) */
    if (new_group) setpgid(0, 0);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) _exit(127);
    /* The parent may ignore or block signals; the child starts with the defaults. */
    struct sigaction dfl;
    dfl.sa_handler = SIG_DFL;
    dfl.sa_flags = 0;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, 0);
    sigaction(SIGTERM, &dfl, 0);
    sigaction(SIGPIPE, &dfl, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(127);
    if (stdout_fd >= 0 && dup2(stdout_fd, 1) < 0) _exit(127);
    if (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0) _exit(127);
    execve(path, argv, envp);
    _exit(127);
}

void alignscope_die_with_parent(int sig, pid_t expected_parent) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, sig);
#endif
    if (getppid() != expected_parent) _exit(1);
}

int alignscope_affinity_cpus(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
#else
    return -1;
#endif
}
