# shellcheck shell=bash
# Common setup for the integration tests (sourced by tests/integration/test_*.sh).
#
# Every test gets its own temporary root:
#   $T/cloud     the vault (the "cloud folder")
#   $T/mnt       the mountpoint
#   $T/state     the local state (--state), where the daemon writes daemon.pid
#                and coffer.log
#   $T/password  the password file;  $T/recovery.key  the recovery key (init)
#
# Guarantees (libfuse's test/run-tests.py is the model): every mount this test
# made is unmounted on exit (coffer unmount, then fusermount3 -u -z), every
# daemon this test started is ended by its PID (read from <state>/daemon.pid,
# never by name), and the temporary root is removed. A watchdog ends the test
# after COFFER_TEST_TIMEOUT seconds (default 540, under ctest's 600) by
# killing only this test's daemons, which makes any hung FUSE call return.
#
# Checks: check, check_fails, assert_eq, assert_file_eq, assert_fails_with,
# assert_errno, ... each counts one pass or one failure and says what
# differed. `finish` prints "N passed, M failed" and exits 1 on any failure.
# A test that dies early (fatal, a signal) prints the summary from the EXIT
# trap with the death counted as a failure.

set -u -o pipefail
export LC_ALL=C

if [ -z "${COFFER_BIN:-}" ]; then
    # Outside ctest: the usual build folders, newest first.
    _src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    for _b in "$_src/build/coffer" "$_src/build-d/coffer"; do
        [ -x "$_b" ] && { COFFER_BIN=$_b; break; }
    done
fi
COFFER=${COFFER_BIN:?set COFFER_BIN to the built coffer binary}
COFFER=$(readlink -f "$COFFER")
[ -x "$COFFER" ] || { echo "not executable: $COFFER" >&2; exit 1; }
COFFER_SOURCE_DIR=${COFFER_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_NAME=$(basename "${0%.sh}")

# Exit codes of docs/CLI-SPEC.md
EX_OK=0 EX_FAIL=1 EX_USAGE=2 EX_WRONG_KEY=10 EX_CORRUPT=11 EX_VERSION=12
EX_BUSY=13 EX_NOT_FOUND=14 EX_ROLLED_BACK=15 EX_PENDING=16 EX_EXISTS=17

# Temp root on a real disk (not tmpfs-only), under COFFER_TEST_TMP if set
# (.ci/run sets it so it can check afterwards that nothing is left mounted).
_tmp_parent=${COFFER_TEST_TMP:-/tmp}
mkdir -p "$_tmp_parent"
T=$(mktemp -d "$_tmp_parent/coffer-it.$TEST_NAME.XXXXXX") || { echo "mktemp failed" >&2; exit 1; }
CLOUD=$T/cloud
MNT=$T/mnt
STATE=$T/state
PW=$T/password
RK=$T/recovery.key
mkdir -p "$CLOUD" "$MNT" "$STATE"
printf '%s\n' 'correct horse battery staple' >"$PW"
chmod 600 "$PW"
: >"$T/.mounts"    # mountpoints this test mounted (one per line)
: >"$T/.states"    # state folders whose daemon.pid this test may end
: >"$T/.pids"      # daemon PIDs this test started

PASSED=0
FAILED=0
_FINISHED=0

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%H:%M:%S)" "$*"; }

pass() { PASSED=$((PASSED + 1)); printf 'ok   %d - %s\n' "$((PASSED + FAILED))" "$1"; }
# fail DESC [DETAIL...]: each DETAIL is printed indented (output that differed).
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL %d - %s\n' "$((PASSED + FAILED))" "$1"
    shift
    local d
    for d in "$@"; do
        [ -n "$d" ] && printf '%s\n' "$d" | head -n 40 | cut -c1-400 | sed 's/^/     | /'
    done
    return 0
}
# fatal MSG: a setup step failed; the rest of the test cannot run.
fatal() {
    fail "FATAL: $*"
    dump_logs
    _FINISHED=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
}

# use_nobody: for tests that act as another user. Sets NOBODY (uid 65534),
# PY (the system's python3: one earlier in root's PATH may sit in root's
# home, where that user cannot go) and as_nobody CMD..., and makes $T
# traversable.
use_nobody() {
    NOBODY=65534
    chmod 755 "$T"
    PY=/usr/bin/python3
    [ -x "$PY" ] || PY=$(command -v python3)
}
as_nobody() { timeout 60 setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups -- "$@"; }

# ---------------------------------------------------------------- checks
# check DESC CMD...: CMD exits 0.
check() {
    local desc=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq 0 ]; then pass "$desc"; else fail "$desc" "exit $rc from: $(_short "$*")" "$out"; fi
}
# check_fails DESC CMD...: CMD exits non-zero.
check_fails() {
    local desc=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -ne 0 ]; then pass "$desc"; else fail "$desc" "expected a failure, got exit 0 from: $(_short "$*")" "$out"; fi
}
# assert_eq EXPECTED ACTUAL [DESC]
assert_eq() {
    local exp=$1 act=$2 desc=${3:-"equals '$1'"}
    if [ "$exp" == "$act" ]; then pass "$desc"
    else fail "$desc" "expected: $(printf '%q' "$exp" | head -c 600)" "actual:   $(printf '%q' "$act" | head -c 600)"; fi
}
# assert_match REGEX ACTUAL [DESC]  (grep -E)
assert_match() {
    local re=$1 act=$2 desc=${3:-"matches /$1/"}
    if printf '%s\n' "$act" | grep -Eq -- "$re"; then pass "$desc"
    else fail "$desc" "no match for /$re/ in:" "$act"; fi
}
# assert_file_eq EXPECTED_FILE ACTUAL_FILE [DESC]: same bytes.
assert_file_eq() {
    local a=$1 b=$2 desc=${3:-"$2 has the bytes of $1"}
    local out
    if out=$(timeout 120 cmp -- "$a" "$b" 2>&1); then pass "$desc"; return; fi
    local sa sb
    sa=$(stat -c %s -- "$a" 2>&1); sb=$(stat -c %s -- "$b" 2>&1)
    fail "$desc" "$out" "sizes: expected $sa, actual $sb" \
        "first differing bytes (offset expected actual, octal): $(timeout 60 cmp -l -- "$a" "$b" 2>/dev/null | head -n 5 | tr '\n' ';')"
}
# assert_fails_with CODE CMD...: CMD exits with exactly CODE.
assert_fails_with() {
    local code=$1; shift
    local out rc
    out=$("$@" 2>&1 </dev/null); rc=$?
    if [ "$rc" -eq "$code" ]; then pass "exit $code from: $(_short "$*")"
    else fail "exit $code from: $(_short "$*")" "actual exit $rc; output:" "$out"; fi
    LAST_OUTPUT=$out
}
# assert_errno ERRNO_NAME PYTHON_CODE [DESC]: the code must raise OSError
# with that errno (e.g. ENAMETOOLONG), or print OK and ERRNO_NAME is OK.
assert_errno() {
    local exp=$1 code=$2 desc=${3:-"$1"}
    local act
    act=$(py_errno "$code")
    if [ "$act" == "$exp" ]; then pass "$desc"
    else fail "$desc" "expected $exp, got: $act"; fi
}
# py_errno PYTHON_CODE: runs the code (os, ctypes, errno imported; M, T set);
# prints OK, or the errno name of the OSError it raised, or the exception.
py_errno() {
    M=$MNT T=$T timeout 120 python3 - "$1" <<'PY' 2>&1
import os, sys, errno, ctypes, ctypes.util, stat
M = os.environ["M"]; T = os.environ["T"]
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else repr(e))
except Exception as e:
    print("EXCEPTION " + repr(e))
PY
}
# py_check DESC PYTHON_CODE: passes if the code runs without an exception
# (use assert inside; M = mountpoint, T = temp root).
py_check() {
    local desc=$1 code=$2 out rc
    out=$(M=$MNT T=$T timeout 300 python3 - "$code" <<'PY' 2>&1
import os, sys, errno, ctypes, ctypes.util, stat
M = os.environ["M"]; T = os.environ["T"]
exec(sys.argv[1])
PY
); rc=$?
    if [ "$rc" -eq 0 ]; then pass "$desc"; else fail "$desc" "python exit $rc" "$out"; fi
}
_short() { local s=$*; s=${s//$T/\$T}; printf '%s' "${s:0:160}"; }

# ---------------------------------------------------------------- coffer
# coffer ARGS...: the binary under a timeout, no stdin (never a prompt).
coffer() { timeout 120 "$COFFER" "$@" </dev/null; }

# coffer_init [extra args]: a new vault in $CLOUD, recovery key saved in $RK.
coffer_init() {
    local out
    if ! out=$(timeout 120 "$COFFER" init "$CLOUD" --insecure-fast-kdf --password-file "$PW" \
            --recovery-key-file "$RK" "$@" </dev/null 2>&1); then
        printf '%s\n' "$out" >&2
        return 1
    fi
    [ -s "$RK" ] || { echo "init wrote no recovery key to $RK" >&2; return 1; }
}

# coffer_mount [extra args]: mounts $CLOUD on $MNT with state $STATE
# (set those variables to mount elsewhere). Records the mountpoint and the
# daemon's PID for the cleanup. Defaults to --password-file $PW unless the
# extra args name a credential.
coffer_mount() {
    local cred=(--password-file "$PW") a rc
    for a in "$@"; do
        case $a in --password-file|--recovery-key-file) cred=() ;; esac
    done
    mkdir -p "$MNT" "$STATE"
    echo "$MNT" >>"$T/.mounts"
    echo "$STATE" >>"$T/.states"
    timeout 60 "$COFFER" mount "$CLOUD" "$MNT" "${cred[@]}" --state "$STATE" "$@" </dev/null
    rc=$?
    _record_pid "$STATE"
    return $rc
}
_record_pid() {
    local p
    [ -s "$1/daemon.pid" ] || return 0
    p=$(tr -dc '0-9' <"$1/daemon.pid")
    [ -n "$p" ] && echo "$p" >>"$T/.pids"
}
# daemon_pid [STATE]: the PID the daemon of that state folder wrote.
daemon_pid() { tr -dc '0-9' <"${1:-$STATE}/daemon.pid" 2>/dev/null; }

# coffer_unmount [MOUNTPOINT]: coffer unmount (which syncs and waits), else
# a lazy fusermount3 -u -z. Returns coffer unmount's exit code.
coffer_unmount() {
    local mp=${1:-$MNT} rc
    timeout 60 "$COFFER" unmount "$mp" </dev/null
    rc=$?
    if [ "$rc" -ne 0 ] && is_mounted "$mp"; then
        echo "coffer unmount $mp failed ($rc): lazy unmount" >&2
        fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
    fi
    return $rc
}

# is_mounted DIR: DIR is a mountpoint in the mount table (works on a stale
# FUSE mount too, where stat fails with ENOTCONN).
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; }

# wait_gone PID [SECONDS]: waits until PID has exited.
wait_gone() {
    local i n=$(( ${2:-30} * 10 ))
    for ((i = 0; i < n; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# A PID is ours to end only if we recorded it and it is still a coffer process.
_is_coffer_pid() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$(readlink -f "$COFFER")" ] || [ "$(basename "${exe% (deleted)}")" = coffer ]
}

dump_logs() {
    local s
    for s in $(sort -u "$T/.states" 2>/dev/null); do
        [ -s "$s/coffer.log" ] || continue
        echo "---- last lines of $s/coffer.log" | sed "s|$T|\$T|"
        tail -n 30 "$s/coffer.log"
    done
}

# ---------------------------------------------------------------- cleanup
_cleanup_done=0
_cleanup() {
    local rc=$?
    [ "$_cleanup_done" = 1 ] && return
    _cleanup_done=1
    if [ -n "${_WATCHDOG:-}" ]; then
        # the watchdog first (so it cannot act), then its sleep (by parent PID)
        _wd_children=$(ps -o pid= --ppid "$_WATCHDOG" 2>/dev/null)
        kill "$_WATCHDOG" 2>/dev/null
        [ -n "$_wd_children" ] && kill $_wd_children 2>/dev/null
    fi
    if [ "$_FINISHED" != 1 ]; then
        [ "$rc" -eq 0 ] && rc=1
        FAILED=$((FAILED + 1))
        echo "FAIL - $TEST_NAME ended early (exit status $rc)"
    fi
    local s mp p
    for s in $(sort -u "$T/.states"); do _record_pid "$s"; done
    # 1. unmount every mountpoint this test made (coffer unmount first, it
    #    waits for the daemon; then a lazy detach)
    for mp in $(sort -u "$T/.mounts"); do
        is_mounted "$mp" || continue
        timeout 30 "$COFFER" unmount "$mp" </dev/null >/dev/null 2>&1
        is_mounted "$mp" && { fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; }
    done
    # 2. end the daemons this test started, by PID only
    for p in $(sort -u "$T/.pids"); do
        _is_coffer_pid "$p" || continue
        kill -TERM "$p" 2>/dev/null
        wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null
    done
    # 3. remove the temp root, unless something is still mounted below it
    if awk -v t="$T/" 'index($2, t) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
        echo "WARNING: still mounted below $T; not removing it" >&2
    elif [ -z "${KEEP_TMP:-}" ]; then
        rm -rf "$T"
    else
        echo "kept $T"
    fi
    if [ "$_FINISHED" != 1 ]; then
        echo "$PASSED passed, $FAILED failed"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'echo "$TEST_NAME: interrupted" >&2; exit 130' INT TERM HUP

# Watchdog: after the limit, kill this test's daemons (so every hung FUSE
# call returns ENOTCONN), then end the test; the EXIT trap cleans up.
COFFER_TEST_TIMEOUT=${COFFER_TEST_TIMEOUT:-540}
(
    trap - EXIT INT TERM HUP
    sleep "$COFFER_TEST_TIMEOUT" </dev/null >/dev/null 2>&1 &
    wait $! || exit 0          # the sleep was ended: the test finished
    kill -0 $$ 2>/dev/null || exit 0
    echo "WATCHDOG: $TEST_NAME exceeded ${COFFER_TEST_TIMEOUT}s" >&2
    for s in $(sort -u "$T/.states" 2>/dev/null); do
        p=$(tr -dc '0-9' <"$s/daemon.pid" 2>/dev/null)
        [ -n "$p" ] && _is_coffer_pid "$p" && kill -KILL "$p" 2>/dev/null
    done
    kill -TERM $$ 2>/dev/null
) &
_WATCHDOG=$!
disown "$_WATCHDOG" 2>/dev/null || true

# finish: the closing line; exit 1 on any failure.
finish() {
    _FINISHED=1
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ] && exit 0
    dump_logs
    exit 1
}

# require_mounted: stop the test if the mount is not usable.
require_mounted() {
    is_mounted "${1:-$MNT}" || fatal "${1:-$MNT} is not mounted"
    timeout 20 stat "${1:-$MNT}" >/dev/null || fatal "${1:-$MNT} is mounted but not usable"
}

# tree_digest DIR: a listing of every entry (type, mode, size, link target)
# and the sha256 of every regular file, relative to DIR, sorted.
tree_digest() {
    (cd "$1" && { find . -mindepth 1 ! -type d -printf '%y %m %s %p -> %l\n'
        find . -mindepth 1 -type d -printf '%y %m %p\n'; } | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# Work inside the temp root, so tools that drop files in the current
# directory (fio's verify state, core files) never touch the checkout.
cd "$T" || exit 1
log "temp root $T; binary $COFFER"
