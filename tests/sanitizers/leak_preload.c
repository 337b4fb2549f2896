/* A deliberate leak in the coffer daemon, for tests/sanitizers/lsan-canary.sh.
 *
 * Preloaded into a sanitized `coffer mount`, it wraps setsid(), which only
 * the forked daemon child calls (src/cli/daemon.cpp, run_mount), so the
 * leak is in the daemon and not in the parent that waits for "ready". The
 * block is 4321 bytes (easy to find in the report) and its pointer is
 * dropped. If LeakSanitizer runs when the daemon exits after an unmount,
 * the report names this block; if the daemon ended through _exit() or a
 * signal, there would be no report at all, and the canary fails.
 * Never linked into coffer itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static void coffer_canary_leak(void) {
    char* p = malloc(4321);
    if (p) memset(p, 0x5a, 4321);
    __asm__ volatile("" : : "r"(p) : "memory");  /* keep the malloc */
}

pid_t setsid(void) {
    pid_t (*real)(void) = (pid_t(*)(void))dlsym(RTLD_NEXT, "setsid");
    coffer_canary_leak();
    return real ? real() : -1;
}
