#!/usr/bin/env bash
# Rollback, as docs/SECURITY.md states it: a device refuses (exit 15) a vault
# older than what it has seen — an older coffer.vault (lower epoch), or a
# journal from which segments it already merged have disappeared — while a
# new device cannot tell an older consistent vault from the current one.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
STATE_A=$T/state-A STATE_B=$T/state-B
STATE=$STATE_A
coffer_mount || fatal "mount (device A)"
require_mounted
echo one >"$MNT/f1"
check "sync (segment 1)" coffer sync "$MNT"
echo two >"$MNT/f2"
coffer_unmount || fail "unmount (segment 2) exit $?"
segs=$(cd "$CLOUD" && find journal -type f | sort)
log "segments: $(echo $segs)"
assert_eq 2 "$(echo "$segs" | grep -c .)" "two journal segments after two publishes"

# ---------------------------------------------------------------- header
log "header rollback"
cp -p "$CLOUD/coffer.vault" "$T/header.epoch1"
printf '%s\n' 'second password' >"$T/pw2"
check "coffer passwd (header epoch 2)" coffer passwd "$CLOUD" --recovery-key-file "$RK" --new-password-file "$T/pw2" --insecure-fast-kdf
assert_match 'epoch: *2' "$(coffer info "$CLOUD" 2>&1)" "coffer info shows header epoch 2"
cp -p "$CLOUD/coffer.vault" "$T/header.epoch2"
coffer_mount --password-file "$T/pw2" || fatal "mount (device A) with the new password"
coffer_unmount || fail "unmount exit $?"
cp -p "$T/header.epoch1" "$CLOUD/coffer.vault"    # the cloud puts the old header back
assert_fails_with "$EX_ROLLED_BACK" coffer mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE_A"
_record_pid "$STATE_A"
assert_match '[Rr]olled back|older' "$LAST_OUTPUT" "the message says the vault was rolled back"
check_fails "old header: nothing mounted" is_mounted "$MNT"
cp -p "$T/header.epoch2" "$CLOUD/coffer.vault"    # the current header again

# ---------------------------------------------------------------- journal
log "journal rollback"
PWNOW=$T/pw2
STATE=$STATE_B
coffer_mount --password-file "$PWNOW" || fatal "mount (device B, new)"
assert_eq "one two" "$(cat "$MNT/f1" "$MNT/f2" 2>&1 | tr '\n' ' ' | sed 's/ $//')" "device B sees both files"
coffer_unmount || fail "unmount exit $?"
last_seg=$(echo "$segs" | tail -n 1)
mv "$CLOUD/$last_seg" "$T/segment.hidden"          # the cloud rolls the journal back
assert_fails_with "$EX_ROLLED_BACK" coffer mount "$CLOUD" "$MNT" --password-file "$PWNOW" --state "$STATE_B"
_record_pid "$STATE_B"
check_fails "device B: nothing mounted on a rolled-back journal" is_mounted "$MNT"
is_mounted "$MNT" && coffer_unmount >/dev/null 2>&1
assert_fails_with "$EX_ROLLED_BACK" coffer mount "$CLOUD" "$MNT" --password-file "$PWNOW" --state "$STATE_A"
_record_pid "$STATE_A"
check_fails "device A (its own segment vanished): nothing mounted" is_mounted "$MNT"
is_mounted "$MNT" && coffer_unmount >/dev/null 2>&1

# A new device cannot tell: it mounts the older, consistent vault.
STATE=$T/state-C
coffer_mount --password-file "$PWNOW" || fail "a new device mounts the rolled-back vault"
if is_mounted "$MNT"; then
    assert_eq one "$(cat "$MNT/f1" 2>&1)" "new device: sees the older state (f1)"
    check_fails "new device: cannot know f2 ever existed (documented limitation)" test -e "$MNT/f2"
    coffer_unmount || fail "unmount exit $?"
fi
mv "$T/segment.hidden" "$CLOUD/$last_seg"
STATE=$STATE_B
coffer_mount --password-file "$PWNOW" || fail "device B mounts again once the segment is back (exit $?)"
if is_mounted "$MNT"; then
    assert_eq two "$(cat "$MNT/f2" 2>&1)" "device B: f2 is back"
    coffer_unmount || fail "unmount exit $?"
fi

finish
