#!/usr/bin/env bash
# A vault whose folder is an rclone mount (issue 13 part 7): a remote of type
# local (no network) mounted with --vfs-cache-mode writes, so every vault file
# coffer writes goes to rclone's cache first and reaches the remote some
# seconds after it is closed, as with a real cloud remote.
#  1. Reading: a vault another device wrote to the remote is mounted through
#     rclone by a new device (fresh --state): same tree, same bytes.
#  2. Writing: coffer init, write, remount
#     at once while uploads may still be queued, a new device replays; after
#     rclone is unmounted the remote holds the whole vault, the bytes coffer
#     saw, and only ciphertext.
# shellcheck disable=SC2034  # read by lib_sync_engines.sh
SYNC_ENGINES=rclone
source "$(dirname "$0")/lib_sync_engines.sh"

assert_confined

REMOTE=$T/remote          # what the "cloud" holds
RMNT=$T/rclone-mnt        # rclone's view of it
rclone_mount "$REMOTE" "$RMNT" || fatal "rclone mount"
pass "rclone mounted a local remote with --vfs-cache-mode writes"
assert_match "fuse.rclone" "$(awk -v m="$RMNT" '$2 == m' /proc/self/mounts)" "the vault folder is an rclone FUSE mount"

# Names and contents that must never appear in the remote.
SECRET_NAME=plaintextname-7Qx2
SECRET_TEXT=plaintext-contents-bW9u
make_tree() {
    local d=$1
    mkdir -p "$d/$SECRET_NAME-dir/nested/deeper" "$d/media"
    printf '%s\n' "$SECRET_TEXT" >"$d/$SECRET_NAME-dir/$SECRET_NAME-note.txt"
    cp "$T/r3" "$d/media/random-3M.bin"
    cp "$T/r5" "$d/media/random-5M.bin"      # over one 4 MiB extent
    for i in $(seq 1 60); do printf '%s %d\n' "$SECRET_TEXT" "$i" >"$d/$SECRET_NAME-dir/nested/deeper/small-$i"; done
    ln -s "../$SECRET_NAME-dir/$SECRET_NAME-note.txt" "$d/media/$SECRET_NAME-link"
    setfattr -n user.tag -v "$SECRET_TEXT" "$d/$SECRET_NAME-dir/$SECRET_NAME-note.txt"
}
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/r3"
head -c $((5 * 1024 * 1024 + 77)) /dev/urandom >"$T/r5"
mkdir -p "$T/ref"
make_tree "$T/ref"

shas() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
# same_tree WHO: the mount equals the reference tree, names, bytes and xattr.
same_tree() {
    check "$1: diff -r against the reference tree" diff -r --no-dereference "$T/ref" "$MNT"
    tree_digest "$T/ref" >"$T/digest.ref"
    tree_digest "$MNT" >"$T/digest.mnt"
    assert_file_eq "$T/digest.ref" "$T/digest.mnt" "$1: tree digest (types, modes, sizes, targets, sha256)"
    assert_eq "$SECRET_TEXT" "$(getfattr --absolute-names --only-values -n user.tag \
        "$MNT/$SECRET_NAME-dir/$SECRET_NAME-note.txt" 2>&1)" "$1: xattr"
}

# ---------------------------------------------------------------- 1. reading
log "a vault written to the remote folder by another device"
CLOUD=$REMOTE/vault STATE=$T/state-writer MNT=$T/mnt-writer
coffer_init || fatal "coffer init in the remote folder"
coffer_mount || fatal "coffer mount of the remote folder"
require_mounted
make_tree "$MNT"
same_tree "writer"
coffer_unmount || fail "writer: coffer unmount exit $?"

log "a new device reads it through the rclone mount"
CLOUD=$RMNT/vault STATE=$T/state-reader MNT=$T/mnt-reader
check "rclone shows the vault" test -s "$CLOUD/coffer.vault"
coffer_mount || fatal "a fresh state mounts the vault through rclone"
require_mounted
same_tree "reader through rclone"
coffer_unmount || fail "reader: coffer unmount exit $?"
check "coffer fsck through the rclone mount" coffer fsck "$CLOUD" --password-file "$PW"

# ---------------------------------------------------------------- 2. writing
# rclone refuses renameat2(RENAME_NOREPLACE) (EINVAL) and has no link(2)
# (EIO): coffer's vault writer falls back to look-then-rename there.
rclone_write_path() {
    CLOUD=$RMNT/vault2 STATE=$T/state-device1 MNT=$T/mnt-device1
    rm -f "$RK"
    local out
    if out=$(coffer_init 2>&1); then pass "coffer init on the rclone mount"
    else fail "coffer init on the rclone mount" "$out"; return 1; fi
    log "device 1: mount on the rclone-backed vault, write, unmount"
    coffer_mount || { fail "coffer mount on the rclone mount"; return 1; }
    require_mounted
    make_tree "$MNT"
    same_tree "device 1, first session"
    coffer_unmount || fail "coffer unmount exit $?"
    queued=$(rclone_rc vfs/stats 2>/dev/null | python3 -c 'import json,sys; c=json.load(sys.stdin)["diskCache"]; print(c["uploadsQueued"] + c["uploadsInProgress"])' 2>/dev/null)
    log "rclone uploads queued or running right after coffer unmount: ${queued:-?}"

    # At once, while rclone may still hold the files in its cache: the same
    # device remounts and changes things.
    log "device 1: remount at once, change, unmount"
    coffer_mount || { fail "second mount on the rclone mount"; return 1; }
    require_mounted
    same_tree "device 1, remounted"
    change_tree() {
        local d=$1
        printf 'second line\n' >>"$d/$SECRET_NAME-dir/$SECRET_NAME-note.txt"
        mv "$d/$SECRET_NAME-dir/nested/deeper/small-7" "$d/media/small-7-moved"
        rm "$d/$SECRET_NAME-dir/nested/deeper/small-8"
        printf 'PATCH' | dd of="$d/media/random-5M.bin" bs=1 seek=4194300 conv=notrunc status=none
        mkdir "$d/later"
        printf '%s later\n' "$SECRET_TEXT" >"$d/later/new.txt"
    }
    change_tree "$T/ref"
    change_tree "$MNT"
    same_tree "device 1, changed"
    coffer_unmount || fail "coffer unmount exit $?"

    log "device 2: a fresh --state replays the rclone-backed vault"
    STATE=$T/state-device2 MNT=$T/mnt-device2
    coffer_mount || { fail "mount with a fresh state on the rclone mount"; return 1; }
    require_mounted
    same_tree "device 2"
    coffer_unmount || fail "device 2: coffer unmount exit $?"
    check "coffer fsck through the rclone mount" coffer fsck "$CLOUD" --password-file "$PW"
}
WRITE_PATH=0
rclone_write_path && WRITE_PATH=1

# ---------------------------------------------------------------- the remote
check "rclone finished its uploads" rclone_wait_uploaded 60
[ "$WRITE_PATH" = 1 ] && shas "$RMNT/vault2" >"$T/vault2.via-rclone"
check "rclone unmounted (fusermount3 -u) and exited" rclone_unmount
check_fails "the rclone mount is gone" is_mounted "$RMNT"

if [ "$WRITE_PATH" = 1 ]; then
    V=$REMOTE/vault2
    check "the remote holds coffer.vault" test -s "$V/coffer.vault"
    check "the remote holds objects" test -n "$(find "$V/objects" -type f | head -n 1)"
    check "the remote holds journal segments" test -n "$(find "$V/journal" -mindepth 2 -type f | head -n 1)"
    shas "$V" >"$T/vault2.remote"
    assert_file_eq "$T/vault2.via-rclone" "$T/vault2.remote" \
        "the remote holds every vault file with the bytes coffer saw through rclone"

    log "device 3: a fresh --state on the remote folder itself (no rclone)"
    CLOUD=$V STATE=$T/state-device3 MNT=$T/mnt-device3
    coffer_mount || fatal "mount of the remote folder with a fresh state"
    require_mounted
    same_tree "device 3, on the remote folder"
    coffer_unmount || fail "device 3: coffer unmount exit $?"
    check "coffer fsck of the remote folder" coffer fsck "$V" --password-file "$PW"
fi

assert_eq "" "$(find "$REMOTE" "$T/rclone-cache" -name "*$SECRET_NAME*" -o -name 'random-*' -o -name 'small-*' | head -n 3)" \
    "no plaintext file name in the remote or rclone's cache"
assert_eq "" "$(grep -rlF -e "$SECRET_TEXT" -e "$SECRET_NAME" "$REMOTE" "$T/rclone-cache" 2>/dev/null | head -n 3)" \
    "no plaintext name or contents inside any file of the remote or rclone's cache"
# plaintext_runs FILE DIR...: files below the DIRs holding any 64-byte run of
# FILE taken every 256 KiB.
plaintext_runs() {
    python3 - "$@" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
needles = [data[o:o + 64] for o in range(0, len(data) - 64, 256 * 1024)]
for top in sys.argv[2:]:
    for d, _, files in os.walk(top):
        for f in files:
            blob = open(os.path.join(d, f), "rb").read()
            if any(n in blob for n in needles):
                print(os.path.join(d, f))
PY
}
assert_eq "" "$(plaintext_runs "$T/r5" "$REMOTE" "$T/rclone-cache")" \
    "no run of the 5 MiB file's plaintext in the remote or rclone's cache"

finish
