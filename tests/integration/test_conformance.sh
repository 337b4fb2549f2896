#!/usr/bin/env bash
# coffer's own POSIX conformance suite (issue 3 part 1), run differentially:
# tests/conformance/posix_suite.py runs the same cases (open/creat, read/write,
# truncate, mkdir/rmdir, unlink, link, symlink, rename and renameat2, names of
# 255/256 bytes, chmod/chown and the setuid/setgid rules, times, xattrs,
# mknod, fallocate, access, uid 65534 permissions and sticky folders, EXDEV)
# on a plain folder and on the coffer mount (-o allow_other, so uid 65534
# can act in it). Fails on: any POSIX/Linux expectation that does not hold
# (on either side), any observation that differs from the plain folder and is
# not in tests/conformance/known_differences.txt, and any entry of that list
# that no longer differs. Then the metadata of the tree the suite made on
# coffer (modes, owners, link counts, sizes, times, xattrs, targets, bytes)
# must be the same after unmount/mount.
source "$(dirname "$0")/lib.sh"

SUITE=$COFFER_SOURCE_DIR/tests/conformance/posix_suite.py
ALLOW=$COFFER_SOURCE_DIR/tests/conformance/known_differences.txt
[ -f "$SUITE" ] || fatal "no $SUITE"
[ -f "$ALLOW" ] || fatal "no $ALLOW"

# uid 65534 must reach both trees: every folder above $T must be traversable
# (.ci/run makes $COFFER_TEST_TMP 0755).
chmod 755 "$T"
PLAIN=$T/plain
OUTSIDE=$T/outside          # a plain folder: another file system than the mount
mkdir -p "$PLAIN" "$OUTSIDE"
as_nobody() { timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
as_nobody test -x "$PLAIN" ||
    fatal "uid 65534 cannot reach $PLAIN: make every folder above it traversable (e.g. chmod 755 \$COFFER_TEST_TMP)"

# EXDEV on the plain folder needs a second file system: a folder in /dev/shm
# (removed by our EXIT trap, which then runs lib.sh's cleanup).
SHM=""
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    SHM=$(mktemp -d /dev/shm/coffer-conformance.XXXXXX) || SHM=""
fi
# shellcheck disable=SC2317  # run by the EXIT trap
_conformance_cleanup() {
    local rc=$?
    [ -n "$SHM" ] && rm -rf "$SHM"
    (exit "$rc")
    _cleanup
}
trap _conformance_cleanup EXIT
OTHER_PLAIN=() OTHER_COFFER=()
if [ -n "$SHM" ] && [ "$(stat -c %d "$SHM")" != "$(stat -c %d "$PLAIN")" ]; then
    chmod 755 "$SHM"
    OTHER_PLAIN=(--other "$SHM")
    OTHER_COFFER=(--other "$OUTSIDE")
else
    log "no second file system for the plain folder (/dev/shm): EXDEV cases skipped on both sides"
fi
log "plain folder on $(stat -f -c %T "$PLAIN"); the allow-list is written against ext4"

coffer_init || fatal "coffer init"
coffer_mount -o allow_other || fatal "coffer mount"
require_mounted
M=$MNT

run_suite() {  # run_suite OUT DIR [--other X]
    local out=$1; shift
    ( cd / && timeout 120 python3 "$SUITE" run "$@" ) >"$out" 2>"$out.err"
}

log "suite on the plain folder"
run_suite "$T/plain.jsonl" "$PLAIN/suite" "${OTHER_PLAIN[@]}"
rc=$?
assert_eq 0 "$rc" "the suite runs on the plain folder (exit status)"
[ "$rc" -eq 0 ] || fail "suite output (plain)" "$(tail -n 20 "$T/plain.jsonl.err")"
log "plain folder: $(tail -n 1 "$T/plain.jsonl.err")"

log "suite on the coffer mount"
run_suite "$T/coffer.jsonl" "$M/suite" "${OTHER_COFFER[@]}"
rc=$?
assert_eq 0 "$rc" "the suite runs on the coffer mount (exit status)"
[ "$rc" -eq 0 ] || fail "suite output (coffer)" "$(tail -n 20 "$T/coffer.jsonl.err")"
log "coffer: $(tail -n 1 "$T/coffer.jsonl.err")"
require_mounted

# report FILE: PASS/FAIL/NOTE lines (TAB-separated) from posix_suite.py
report() {
    local kind what detail n=0
    while IFS=$'\t' read -r kind what detail; do
        n=$((n + 1))
        case $kind in
            PASS) pass "$what" ;;
            FAIL) fail "$what" "$detail" ;;
            NOTE) log "$what" ;;
            *) fail "unexpected output of posix_suite.py" "$kind $what $detail" ;;
        esac
    done <"$1"
    [ "$n" -gt 0 ] || fail "posix_suite.py printed nothing" "$(cat "$1.err" 2>/dev/null)"
}

log "comparison (allow-list: tests/conformance/known_differences.txt)"
python3 "$SUITE" compare "$T/plain.jsonl" "$T/coffer.jsonl" "$ALLOW" >"$T/compare.out" 2>"$T/compare.out.err" ||
    fail "posix_suite.py compare failed" "$(tail -n 20 "$T/compare.out.err")"
report "$T/compare.out"

# ------------------------------------------------------------ remount
log "metadata of the suite's tree across unmount/mount"
python3 "$SUITE" snapshot "$M/suite" >"$T/snap.before" 2>"$T/snap.err" || fail "snapshot before" "$(cat "$T/snap.err")"
n=$(wc -l <"$T/snap.before")
if [ "$n" -ge 500 ]; then pass "snapshot of $n entries"; else fail "snapshot too small" "$n entries"; fi
coffer_unmount || fail "coffer unmount exit $?"
check_fails "not mounted after unmount" is_mounted "$MNT"
coffer_mount -o allow_other || fatal "second mount"
require_mounted
python3 "$SUITE" snapshot "$M/suite" >"$T/snap.after" 2>>"$T/snap.err" || fail "snapshot after" "$(cat "$T/snap.err")"
python3 "$SUITE" snapdiff "$T/snap.before" "$T/snap.after" >"$T/snapdiff.out" 2>"$T/snapdiff.out.err" ||
    fail "posix_suite.py snapdiff failed" "$(tail -n 20 "$T/snapdiff.out.err")"
report "$T/snapdiff.out"
coffer_unmount || fail "final coffer unmount exit $?"
finish
