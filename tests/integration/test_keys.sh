#!/usr/bin/env bash
# Keys and the command line's refusals: wrong password (exit 10, nothing
# changed), the recovery key opens the vault and sets a new password,
# `coffer info` needs no password and flags test parameters, init into a
# non-empty folder (17), an unknown format version (12), and the other
# documented exit codes (2, 13, 14).
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
check "recovery key file is mode 0600" test "$(stat -c %a "$RK")" = 600
check "recovery key file is not empty" test -s "$RK"
assert_match '[A-Z2-7]{4}' "$(cat "$RK")" "recovery key looks like base32 groups"
check_fails "the recovery key is not in the vault folder" grep -rqF "$(head -n 1 "$RK" | tr -d '\n')" "$CLOUD"
check_fails "the password is not in the vault folder" grep -rqF 'correct horse battery staple' "$CLOUD"

coffer_mount || fatal "coffer mount"
require_mounted
echo "keys test content" >"$MNT/file.txt"
coffer_unmount || fail "coffer unmount exit $?"

vault_digest() { (cd "$CLOUD" && find . -printf '%p %s %T@\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
vault_digest >"$T/vault.before"

# ---------------------------------------------------------------- wrong password
log "wrong password"
printf '%s\n' 'not the password' >"$T/wrong"
assert_fails_with "$EX_WRONG_KEY" coffer mount "$CLOUD" "$MNT" --password-file "$T/wrong" --state "$STATE"
_record_pid "$STATE"
assert_match '[Ww]rong|[Ii]ncorrect|password' "$LAST_OUTPUT" "wrong password: the message says so"
check_fails "wrong password: nothing mounted" is_mounted "$MNT"
assert_fails_with "$EX_WRONG_KEY" coffer fsck "$CLOUD" --password-file "$T/wrong"
assert_fails_with "$EX_WRONG_KEY" coffer passwd "$CLOUD" --password-file "$T/wrong" --new-password-file "$T/wrong" --insecure-fast-kdf
printf '%s\n' 'AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA' >"$T/wrong.rk"
assert_fails_with_any() { local out rc; out=$("${@:2}" 2>&1 </dev/null); rc=$?
    if [[ " $1 " == *" $rc "* ]]; then pass "exit in {$1} from: $(_short "${*:2}")"; else fail "exit in {$1} from: $(_short "${*:2}")" "actual exit $rc" "$out"; fi; }
# A malformed key is a usage error (2) or simply a wrong key (10).
assert_fails_with_any "2 10" coffer mount "$CLOUD" "$MNT" --recovery-key-file "$T/wrong.rk" --state "$STATE"
check_fails "wrong recovery key: nothing mounted" is_mounted "$MNT"
# A well-formed recovery key of another vault: a wrong key, exit 10.
mkdir -p "$T/other-vault"
check "init of a second vault" coffer init "$T/other-vault" --password-file "$PW" --insecure-fast-kdf --recovery-key-file "$T/other.rk"
assert_fails_with "$EX_WRONG_KEY" coffer mount "$CLOUD" "$MNT" --recovery-key-file "$T/other.rk" --state "$STATE"
assert_match '[Ww]rong|recovery' "$LAST_OUTPUT" "wrong recovery key: the message says so"
check_fails "another vault's recovery key: nothing mounted" is_mounted "$MNT"
assert_fails_with "$EX_WRONG_KEY" coffer fsck "$CLOUD" --recovery-key-file "$T/other.rk"
# The other vault's password is the same: its slot must not open this vault.

vault_digest >"$T/vault.after"
assert_file_eq "$T/vault.before" "$T/vault.after" "wrong credentials changed nothing in the vault folder"

# ---------------------------------------------------------------- info
log "coffer info"
info=$(coffer info "$CLOUD" 2>&1); rc=$?
assert_eq 0 "$rc" "coffer info needs no password (stdin is /dev/null)"
assert_match 'INSECURE' "$info" "coffer info says INSECURE for --insecure-fast-kdf"
assert_match '[0-9a-f]{16}' "$info" "coffer info shows the vault id"
check_fails "coffer info does not print the recovery key" grep -qF "$(head -n 1 "$RK" | tr -d '\n')" <<<"$info"

# ---------------------------------------------------------------- recovery key
log "recovery key opens the vault"
STATE=$T/state-rk
coffer_mount --recovery-key-file "$RK" || fail "mount with the recovery key (fresh state) exit $?"
if is_mounted "$MNT"; then
    assert_eq "keys test content" "$(cat "$MNT/file.txt" 2>&1)" "recovery key: the file reads back"
    coffer_unmount || fail "coffer unmount exit $?"
fi

log "coffer passwd with the recovery key"
printf '%s\n' 'a brand new password' >"$T/newpw"
check "coffer passwd --recovery-key-file --new-password-file" \
    coffer passwd "$CLOUD" --recovery-key-file "$RK" --new-password-file "$T/newpw" --insecure-fast-kdf
STATE=$T/state-newpw
assert_fails_with "$EX_WRONG_KEY" coffer mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE"
_record_pid "$STATE"
check_fails "old password: nothing mounted" is_mounted "$MNT"
coffer_mount --password-file "$T/newpw" || fail "mount with the new password exit $?"
if is_mounted "$MNT"; then
    assert_eq "keys test content" "$(cat "$MNT/file.txt" 2>&1)" "new password: the file reads back"
    coffer_unmount || fail "coffer unmount exit $?"
fi
check "the recovery key still opens the vault after passwd (fsck)" coffer fsck "$CLOUD" --recovery-key-file "$RK"
check "passwd back with the new password as the old one" \
    coffer passwd "$CLOUD" --password-file "$T/newpw" --new-password-file "$PW" --insecure-fast-kdf
check "the original password opens it again (fsck)" coffer fsck "$CLOUD" --password-file "$PW"
assert_fails_with "$EX_WRONG_KEY" coffer fsck "$CLOUD" --password-file "$T/newpw"
check "passwd left no file in the vault's tmp/" test -z "$(find "$CLOUD/tmp" -type f 2>/dev/null)"

# ---------------------------------------------------------------- init refusals
log "init refusals"
mkdir -p "$T/nonempty" && echo x >"$T/nonempty/something"
assert_fails_with "$EX_EXISTS" coffer init "$T/nonempty" --password-file "$PW" --insecure-fast-kdf --recovery-key-file "$T/rk2"
assert_eq "something" "$(ls "$T/nonempty")" "init into a non-empty folder wrote nothing"
assert_fails_with "$EX_EXISTS" coffer init "$CLOUD" --password-file "$PW" --insecure-fast-kdf --recovery-key-file "$T/rk3"
mkdir -p "$T/empty1"
assert_fails_with "$EX_EXISTS" coffer init "$T/empty1" --password-file "$PW" --insecure-fast-kdf --recovery-key-file "$RK"
assert_eq "" "$(ls -A "$T/empty1")" "init refused before writing anything when the key file exists"
assert_fails_with "$EX_NOT_FOUND" coffer info "$T/does-not-exist"

# ---------------------------------------------------------------- format version
log "unknown format version"
cp -a "$CLOUD" "$T/future"
printf '\x63' | dd of="$T/future/coffer.vault" bs=1 seek=7 conv=notrunc status=none
assert_fails_with "$EX_VERSION" coffer mount "$T/future" "$MNT" --password-file "$PW" --state "$T/state-future"
echo "$T/state-future" >>"$T/.states"
assert_match '[Vv]ersion|[Uu]nsupported' "$LAST_OUTPUT" "the message names the version"
check_fails "unknown version: nothing mounted" is_mounted "$MNT"
assert_fails_with "$EX_VERSION" coffer info "$T/future"
assert_fails_with "$EX_VERSION" coffer fsck "$T/future" --password-file "$PW"

# ---------------------------------------------------------------- other exit codes
log "other exit codes"
assert_fails_with "$EX_USAGE" coffer
assert_fails_with "$EX_USAGE" coffer no-such-command
assert_fails_with "$EX_USAGE" coffer mount "$CLOUD"
assert_fails_with "$EX_NOT_FOUND" coffer mount "$T/no-vault" "$MNT" --password-file "$PW" --state "$T/state-x"
assert_fails_with "$EX_NOT_FOUND" coffer mount "$CLOUD" "$T/no-mountpoint" --password-file "$PW" --state "$T/state-y"
assert_fails_with "$EX_NOT_FOUND" coffer unmount "$MNT"
assert_fails_with "$EX_NOT_FOUND" coffer sync "$MNT"
echo "$T/state-x" >>"$T/.states"; echo "$T/state-y" >>"$T/.states"
STATE=$T/state
coffer_mount || fatal "mount for the busy checks"
assert_fails_with "$EX_BUSY" coffer mount "$CLOUD" "$MNT" --password-file "$PW" --state "$T/state-z"
echo "$T/state-z" >>"$T/.states"
mkdir -p "$T/mnt-other"
echo "$T/mnt-other" >>"$T/.mounts"
assert_fails_with "$EX_BUSY" coffer mount "$CLOUD" "$T/mnt-other" --password-file "$PW" --state "$STATE"
check_fails "a second daemon on a locked state folder did not mount" is_mounted "$T/mnt-other"
assert_eq "keys test content" "$(cat "$MNT/file.txt" 2>&1)" "the first mount still works"
coffer_unmount || fail "coffer unmount exit $?"

finish
