#!/usr/bin/env bash
# Sanitizer canary for the coffer daemon (run by `.ci/run asan` and
# `.ci/run tsan`): proves that the sanitized CI runs would see a finding in
# the daemon, which has no terminal and reports only through log_path files.
#
#  1. a clean mount / write / read / `coffer unmount` cycle: the daemon exits
#     on its own and leaves no sanitizer report;
#  2. the same cycle with a deliberate bug preloaded into the daemon only
#     (a setsid() wrapper; only the forked daemon child calls setsid):
#     - ASan build: tests/sanitizers/leak_preload.c leaks 4321 bytes; when
#       the daemon exits after the unmount, LeakSanitizer must write a
#       report for the daemon's PID naming that block. No report would mean
#       the daemon ended without LSan's exit check (_exit, a signal, a hang)
#       and every "no leak" of the CI run is void. The daemon leaves through
#       a plain return from main() (src/cli/daemon.cpp serve() -> run_mount()
#       -> cli::main()), so exit() runs LSan;
#     - TSan build: tests/sanitizers/race_preload.c (built with
#       -fsanitize=thread) has two threads increment one global without a
#       lock; ThreadSanitizer must report the data race for the daemon's PID.
#
#   COFFER_BIN=/tmp/build-asan/coffer bash tests/sanitizers/sanitizer-canary.sh
# COFFER_BIN must be built with -DCOFFER_SANITIZE=ON or =thread (the kind is
# read from the libraries it links). Needs cc for the preloaded library.
source "$(dirname "$0")/../integration/lib.sh"

SAN_DIR=$COFFER_SOURCE_DIR/tests/sanitizers
libs=$(ldd "$COFFER" 2>/dev/null)
if grep -q libasan <<<"$libs"; then
    KIND=asan
    cc -shared -fPIC -O0 -g -o "$T/bug.so" "$SAN_DIR/leak_preload.c" -ldl || fatal "cannot build leak_preload.c"
    WANT=("ERROR: LeakSanitizer: detected memory leaks" "Direct leak of 4321 byte\(s\)" "coffer_canary_leak")
elif grep -q libtsan <<<"$libs"; then
    KIND=tsan
    cc -shared -fPIC -O1 -g -fsanitize=thread -o "$T/bug.so" "$SAN_DIR/race_preload.c" -ldl -lpthread ||
        fatal "cannot build race_preload.c"
    WANT=("WARNING: ThreadSanitizer: data race" "coffer_canary_race")
else
    fatal "$COFFER links neither libasan nor libtsan (build with -DCOFFER_SANITIZE=ON or =thread)"
fi
BUG_SRC=$([ "$KIND" = asan ] && echo leak_preload.c || echo race_preload.c)
log "sanitizer: $KIND"
mkdir -p "$T/clean" "$T/bug"
coffer_init || fatal "coffer init"

# cycle DIR [LD_PRELOAD]: mount with reports to DIR, write, read, unmount,
# wait for the daemon to be gone; prints the daemon's PID.
cycle() {
    local dir=$1 pre=${2:-} pid out
    out=$(LD_PRELOAD=$pre \
          ASAN_OPTIONS="detect_leaks=1:verify_asan_link_order=0:log_path=$dir/asan" \
          UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/ubsan" \
          TSAN_OPTIONS="halt_on_error=0:log_path=$dir/tsan" coffer_mount 2>&1) ||
        { echo "mount failed: $out" >&2; return 1; }
    pid=$(daemon_pid)
    [ -n "$pid" ] || { echo "no daemon.pid" >&2; return 1; }
    head -c 300000 /dev/urandom >"$T/data"
    { cp "$T/data" "$MNT/data" && cmp -s "$T/data" "$MNT/data"; } ||
        { echo "write/read through the mount failed" >&2; return 1; }
    out=$(coffer_unmount 2>&1) || { echo "coffer unmount failed: $out" >&2; return 1; }
    wait_gone "$pid" 60 || { echo "daemon $pid still running 60 s after the unmount" >&2; return 1; }
    echo "$pid"
}

log "1. clean cycle"
if pid=$(cycle "$T/clean"); then
    pass "clean mount/write/unmount cycle, daemon $pid exited"
    reports=$(find "$T/clean" -mindepth 1 -printf '%f\n')
    assert_eq "" "$reports" "no sanitizer report from a clean cycle"
    [ -n "$reports" ] && head -n 60 "$T/clean"/* >&2
else
    fail "clean cycle"
fi

log "2. cycle with a deliberate bug in the daemon (LD_PRELOAD of tests/sanitizers/$BUG_SRC)"
if pid=$(cycle "$T/bug" "$T/bug.so"); then
    pass "mount/write/unmount cycle with the bug, daemon $pid exited"
    rep=$T/bug/$KIND.$pid
    check "a report from $KIND for the daemon ($KIND.$pid)" test -s "$rep"
    if [ -s "$rep" ]; then
        for w in "${WANT[@]}"; do assert_match "$w" "$(cat "$rep")" "the report has /$w/"; done
    fi
    others=$(find "$T/bug" -mindepth 1 ! -name "$KIND.$pid" -printf '%f\n')
    assert_eq "" "$others" "no other process reported (the mount client has no bug)"
    [ -n "$others" ] && find "$T/bug" -mindepth 1 ! -name "$KIND.$pid" -exec head -n 40 {} + >&2
else
    fail "cycle with the bug"
fi
finish
