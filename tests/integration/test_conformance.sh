#!/usr/bin/env bash
# coffer's own POSIX conformance suite (issue 3 part 1), run differentially:
# tests/conformance/posix_suite.py runs the same cases (open/creat, read/write,
# truncate, mkdir/rmdir, unlink, link, symlink, rename and renameat2, names of
# 255/256 bytes, chmod/chown and the setuid/setgid rules, times, xattrs,
# mknod, fallocate, access, uid 65534 permissions and sticky folders, EXDEV)
# on a plain folder and on the coffer mount (-o allow_other, so uid 65534
# can act in it), once as mounted by default (the kernel's write-back
# cache on) and once with -o no_writeback_cache. Fails on: any POSIX/Linux expectation that does not hold
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

run_suite() {  # run_suite OUT DIR [--other X]
    local out=$1; shift
    ( cd / && timeout 120 python3 "$SUITE" run "$@" ) >"$out" 2>"$out.err"
}

# report FILE: PASS/FAIL/NOTE lines (TAB-separated) from posix_suite.py
report() {
    local kind what detail n=0
    while IFS=$'\t' read -r kind what detail; do
        n=$((n + 1))
        case $kind in
            PASS) pass "$PREFIX$what" ;;
            FAIL) fail "$PREFIX$what" "$detail" ;;
            NOTE) log "$PREFIX$what" ;;
            *) fail "unexpected output of posix_suite.py" "$kind $what $detail" ;;
        esac
    done <"$1"
    [ "$n" -gt 0 ] || fail "posix_suite.py printed nothing" "$(cat "$1.err" 2>/dev/null)"
}

log "suite on the plain folder"
run_suite "$T/plain.jsonl" "$PLAIN/suite" "${OTHER_PLAIN[@]}"
rc=$?
assert_eq 0 "$rc" "the suite runs on the plain folder (exit status)"
[ "$rc" -eq 0 ] || fail "suite output (plain)" "$(tail -n 20 "$T/plain.jsonl.err")"
log "plain folder: $(tail -n 1 "$T/plain.jsonl.err")"

# round MODE MOUNT-OPTIONS: the suite on the mount in one mode, compared with
# the plain folder, then its tree's metadata across unmount/mount.
round() {
    local mode=$1 opts=$2 dir other=()
    PREFIX="[$mode] "
    dir=suite-$mode
    if [ ${#OTHER_COFFER[@]} -gt 0 ]; then
        mkdir -p "$OUTSIDE/$mode"
        other=(--other "$OUTSIDE/$mode")
    fi
    coffer_mount -o "$opts" || fatal "coffer mount -o $opts"
    require_mounted
    log "suite on the coffer mount ($mode: -o $opts)"
    run_suite "$T/coffer-$mode.jsonl" "$MNT/$dir" "${other[@]}"
    rc=$?
    assert_eq 0 "$rc" "${PREFIX}the suite runs on the coffer mount (exit status)"
    [ "$rc" -eq 0 ] || fail "suite output (coffer, $mode)" "$(tail -n 20 "$T/coffer-$mode.jsonl.err")"
    log "coffer ($mode): $(tail -n 1 "$T/coffer-$mode.jsonl.err")"
    require_mounted

    log "comparison (allow-list: tests/conformance/known_differences.txt, mode $mode)"
    python3 "$SUITE" compare "$T/plain.jsonl" "$T/coffer-$mode.jsonl" "$ALLOW" --mode "$mode" \
        >"$T/compare-$mode.out" 2>"$T/compare-$mode.out.err" ||
        fail "posix_suite.py compare failed" "$(tail -n 20 "$T/compare-$mode.out.err")"
    report "$T/compare-$mode.out"

    log "metadata of the suite's tree across unmount/mount ($mode)"
    python3 "$SUITE" snapshot "$MNT/$dir" >"$T/snap-$mode.before" 2>"$T/snap.err" ||
        fail "snapshot before" "$(cat "$T/snap.err")"
    n=$(wc -l <"$T/snap-$mode.before")
    if [ "$n" -ge 500 ]; then pass "${PREFIX}snapshot of $n entries"; else fail "snapshot too small" "$n entries"; fi
    coffer_unmount || fail "coffer unmount exit $?"
    check_fails "${PREFIX}not mounted after unmount" is_mounted "$MNT"
    coffer_mount -o "$opts" || fatal "second mount -o $opts"
    require_mounted
    python3 "$SUITE" snapshot "$MNT/$dir" >"$T/snap-$mode.after" 2>>"$T/snap.err" ||
        fail "snapshot after" "$(cat "$T/snap.err")"
    python3 "$SUITE" snapdiff "$T/snap-$mode.before" "$T/snap-$mode.after" >"$T/snapdiff-$mode.out" \
        2>"$T/snapdiff-$mode.out.err" || fail "posix_suite.py snapdiff failed" "$(tail -n 20 "$T/snapdiff-$mode.out.err")"
    report "$T/snapdiff-$mode.out"
    coffer_unmount || fail "final coffer unmount exit $?"
}

# The default mount (the kernel's write-back cache on), then without it
# (where SEEK_DATA/SEEK_HOLE come from coffer's own map of the file).
round writeback allow_other
round no_writeback allow_other,no_writeback_cache
finish
