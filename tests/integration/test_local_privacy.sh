#!/usr/bin/env bash
# Local state and vault files are private (issue 14, part 4): index.db, its
# WAL and SHM, the staging logs, daemon.pid, coffer.log and the lock are
# 0600 in 0700 folders whatever the umask (022 and 000 here); the vault's
# files are 0600 and its folders 0700, so another local user can neither
# read the index nor copy coffer.vault to guess the password offline. An
# existing --state folder open to others is made private with a warning; one
# of another user is refused.
source "$(dirname "$0")/lib.sh"

use_nobody

# not_private DIR: every entry below DIR (and DIR) whose mode lets anyone
# but the owner in: folders must be 0700, everything else 0600.
not_private() {
    find "$1" \( -type d ! -perm 700 \) -printf '%m %y %p\n' -o \( ! -type d ! -perm 600 \) -printf '%m %y %p\n'
}
# expect_private WHAT DIR
expect_private() {
    local bad
    bad=$(not_private "$2" | sed "s|$T|\$T|")
    if [ -z "$bad" ]; then pass "$1: every file 0600, every folder 0700"
    else fail "$1: every file 0600, every folder 0700" "$bad"; fi
    # What another user can actually do, beyond the mode bits.
    if as_nobody find "$2" -mindepth 1 -maxdepth 1 >/dev/null 2>&1; then
        fail "$1: uid $NOBODY cannot list it"
    else pass "$1: uid $NOBODY cannot list it"; fi
}
# expect_files DIR NAME...: the files exist (or the mode checks prove little).
expect_files() {
    local d=$1 n missing=""; shift
    for n in "$@"; do [ -e "$d/$n" ] || missing+=" $n"; done
    if [ -z "$missing" ]; then pass "$(basename "$d") holds $*"
    else fail "$(basename "$d") holds $*" "missing:$missing" "$(ls -la "$d" "$d/staging" 2>&1)"; fi
}

for mask in 022 000; do
    log "---- umask $mask"
    CLOUD=$T/cloud$mask MNT=$T/mnt$mask STATE=$T/state$mask RK=$T/rk$mask
    # Not made beforehand: init makes the vault folder, the mount the state folder.
    rm -rf "$STATE"
    mkdir -p "$MNT"
    (umask $mask && coffer_init) || fatal "init under umask $mask"
    echo "$MNT" >>"$T/.mounts"; echo "$STATE" >>"$T/.states"
    (umask $mask && timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null) ||
        fatal "mount under umask $mask"
    _record_pid "$STATE"
    require_mounted
    # Staged content, pending operations, a publish: every kind of file.
    (umask $mask && mkdir -p "$MNT/d/e" && head -c 300000 /dev/urandom >"$MNT/d/big" && echo small >"$MNT/d/e/s") ||
        fail "writes under umask $mask"
    check "sync under umask $mask" coffer sync "$MNT"
    echo more >>"$MNT/d/e/s"
    sync
    # No -shm: the index is opened with locking_mode=EXCLUSIVE; one would be checked too.
    expect_files "$STATE" index.db index.db-wal daemon.pid coffer.log lock staging
    if [ -n "$(ls -A "$STATE/staging")" ]; then pass "staging holds logs"; else fail "staging holds logs"; fi
    expect_private "umask $mask, mounted: the local state" "$STATE"
    expect_private "umask $mask: the vault" "$CLOUD"
    check "umask $mask: the vault holds objects" test -n "$(find "$CLOUD/objects" -type f)"
    check "umask $mask: the vault holds journal segments" test -n "$(find "$CLOUD/journal" -type f)"
    check "umask $mask: unmount" coffer_unmount "$MNT"
    expect_private "umask $mask, unmounted: the local state" "$STATE"
    expect_private "umask $mask, unmounted: the vault" "$CLOUD"
    assert_eq 600 "$(stat -c %a "$RK")" "umask $mask: the recovery key file is 0600"
done

# ---- an existing state folder open to others, with a file an older coffer left readable
CLOUD=$T/cloud022 MNT=$T/mnt022 STATE=$T/loose
mkdir -m 755 "$STATE"
printf 'old log line\n' >"$STATE/coffer.log"
chmod 644 "$STATE/coffer.log"
echo "$STATE" >>"$T/.states"
out=$(timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null 2>&1)
rc=$?
_record_pid "$STATE"
assert_eq 0 "$rc" "mount with a state folder of mode 0755"
assert_match "warning: .*$STATE.* open to other users \(mode 0755\)" "$out" "... warns, naming the folder and its mode"
expect_private "a state folder that was 0755" "$STATE"
coffer_unmount "$MNT" || fail "unmount"

# ---- a state folder of another user: refused
STATE=$T/foreign
mkdir -m 700 "$STATE"
chown $NOBODY:$NOBODY "$STATE"
out=$(timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null 2>&1)
rc=$?
echo "$STATE" >>"$T/.states"; _record_pid "$STATE"
if [ "$rc" -ne 0 ]; then pass "a state folder of uid $NOBODY is refused (exit $rc)"
else fail "a state folder of uid $NOBODY is refused" "$out"; fi
assert_match "belongs to uid $NOBODY" "$out" "... saying whose it is"
check_fails "nothing mounted" is_mounted "$MNT"
check "nothing written into it" test -z "$(ls -A "$STATE")"
finish
