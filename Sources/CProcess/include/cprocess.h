#ifndef ALIGNSCOPE_CPROCESS_H
#define ALIGNSCOPE_CPROCESS_H
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL-terminated) and the given descriptors as its
/// stdin/stdout/stderr (-1: inherit). The child dies with its parent (Linux: PR_SET_PDEATHSIG,
/// SIGKILL), so a parent killed by SIGKILL leaves no child behind. With `new_group`, the child leads
/// a process group of its own (kill(-pid, sig) reaches whatever it starts).
/// Between fork and exec only async-signal-safe calls are made.
/// Returns the child's pid, or -1 with errno set (an exec failure is reported by the child exiting 127).
pid_t alignscope_spawn(const char *path, char *const argv[], char *const envp[],
                       int stdin_fd, int stdout_fd, int stderr_fd, int new_group);

/// Makes the calling process receive `sig` when its parent exits (Linux), and exits at once with
/// status 1 if the parent is already gone (the parent's pid is no longer `expected_parent`).
void alignscope_die_with_parent(int sig, pid_t expected_parent);

/// The number of CPUs in the calling thread's affinity mask (sched_getaffinity), or -1 when it cannot be read.
int alignscope_affinity_cpus(void);

#endif
