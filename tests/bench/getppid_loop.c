/* A system-call-heavy loop for the seccomp row of tests/bench/run.sh: N getppid calls
 * (default 10,000,000), made with syscall() so that no C library cache can answer them.
 * Built static by run.sh, so it needs nothing inside the sandbox but itself. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return 0;
}
