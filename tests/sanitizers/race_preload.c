/* A deliberate data race in the coffer daemon, for the ThreadSanitizer
 * canary in `.ci/run tsan` (tests/sanitizers/sanitizer-canary.sh).
 *
 * Built with -fsanitize=thread and preloaded into a TSan `coffer mount`, it
 * wraps setsid(), which only the forked daemon child calls: two threads
 * write one global without a lock. ThreadSanitizer must report it in the
 * daemon's log_path file; if it does not, TSan's reports are not reaching
 * the CI run and its "no race" means nothing. Never linked into coffer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

static int coffer_canary_counter;

__attribute__((noinline)) static void* coffer_canary_race(void* arg) {
    (void)arg;
    for (int i = 0; i < 1000; ++i) coffer_canary_counter++;  /* unsynchronized: the race */
    return NULL;
}

pid_t setsid(void) {
    pid_t (*real)(void) = (pid_t(*)(void))dlsym(RTLD_NEXT, "setsid");
    pthread_t a, b;
    if (pthread_create(&a, NULL, coffer_canary_race, NULL) == 0) {
        if (pthread_create(&b, NULL, coffer_canary_race, NULL) == 0) pthread_join(b, NULL);
        pthread_join(a, NULL);
    }
    return real ? real() : -1;
}
