#!/usr/bin/env bash
# Persistence: what was written survives unmount/mount on the same device,
# and after `coffer sync` a second device (a fresh --state folder) mounting
# the same vault sees the same tree and the same bytes.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

# A reference tree written to a plain directory and to the mount alike.
make_tree() {
    local d=$1
    mkdir -p "$d/docs/deep/deeper" "$d/empty-dir" "$d/photos"
    printf 'small text\n' >"$d/docs/note.txt"
    cp "$T/r1" "$d/docs/deep/random-3M.bin"
    cp "$T/r2" "$d/photos/random-9M.bin"            # more than two 4 MiB extents
    head -c 1 /dev/zero >"$d/docs/one-byte"
    : >"$d/docs/empty"
    for i in $(seq 1 200); do printf 'file %d\n' "$i" >"$d/docs/deep/deeper/f$i"; done
    ln -s ../docs/note.txt "$d/photos/link-to-note"
    ln "$d/docs/note.txt" "$d/docs/hardlink-to-note"
    truncate -s 20M "$d/sparse-20M"
    printf 'tail' | dd of="$d/sparse-20M" bs=1 seek=$((20 * 1024 * 1024 - 4)) conv=notrunc status=none
    chmod 600 "$d/docs/one-byte"
    chmod 751 "$d/docs/deep"
    setfattr -n user.tag -v persistence "$d/docs/note.txt"
}
head -c 3000000 /dev/urandom >"$T/r1"
head -c 9437185 /dev/urandom >"$T/r2"
mkdir -p "$T/ref"
make_tree "$T/ref"
make_tree "$MNT"
# Overwrite part of a file already written, so the remount sees a version
# built from more than one write.
printf 'PATCH' | dd of="$T/ref/photos/random-9M.bin" bs=1 seek=5000000 conv=notrunc status=none
printf 'PATCH' | dd of="$MNT/photos/random-9M.bin" bs=1 seek=5000000 conv=notrunc status=none

check "diff -r of the mount and the plain tree (before any unmount)" diff -r --no-dereference "$T/ref" "$MNT"
tree_digest "$MNT" >"$T/digest.1"

# ---------------------------------------------------------------- same device
log "unmount, mount again (same device)"
coffer_unmount || fail "coffer unmount exit $?"
check_fails "the mountpoint is no longer mounted" is_mounted "$MNT"
check_fails "no daemon left after unmount" kill -0 "$(daemon_pid)"
coffer_mount || fatal "second mount"
require_mounted
check "diff -r after remount" diff -r --no-dereference "$T/ref" "$MNT"
tree_digest "$MNT" >"$T/digest.2"
assert_file_eq "$T/digest.1" "$T/digest.2" "tree digest (types, modes, sizes, link targets, sha256) after remount"
(cd "$T/ref" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sha.ref"
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sha.mnt"
assert_file_eq "$T/sha.ref" "$T/sha.mnt" "sha256sum of every file equals the plain tree"
assert_eq persistence "$(getfattr --absolute-names --only-values -n user.tag "$MNT/docs/note.txt" 2>&1)" "xattr after remount"
assert_eq 2 "$(stat -c %h "$MNT/docs/note.txt")" "hard link count after remount"
# 4 bytes at the end of a 20 MiB hole: at most the one 4 MiB extent that
# holds them may be stored (holes inside an extent are stored as zeros).
sparse_kib=$(( $(stat -c %b "$MNT/sparse-20M") / 2 ))
check "sparse 20 MiB file takes at most one extent after remount (${sparse_kib} KiB)" test "$sparse_kib" -le 4160

# More changes in the second session, then sync while mounted.
log "changes, then coffer sync MOUNTPOINT"
for d in "$T/ref" "$MNT"; do
    rm "$d/docs/deep/deeper/f7"
    mv "$d/docs/deep/deeper/f8" "$d/docs/renamed-f8"
    echo appended >>"$d/docs/note.txt"
    mkdir "$d/new-dir"
    echo new >"$d/new-dir/new-file"
    truncate -s 1000 "$d/docs/deep/random-3M.bin"
done
check "coffer sync MOUNTPOINT" coffer sync "$MNT"
check "coffer status MOUNTPOINT" coffer status "$MNT"
check "coffer sync with nothing to do" coffer sync "$MNT"
check "diff -r after sync" diff -r --no-dereference "$T/ref" "$MNT"
tree_digest "$MNT" >"$T/digest.3"
check "vault has objects after sync" test -n "$(find "$CLOUD/objects" -type f 2>/dev/null | head -n 1)"
check "vault has a journal segment after sync" test -n "$(find "$CLOUD/journal" -type f 2>/dev/null | head -n 1)"
check "vault tmp/ holds no leftovers after sync" test -z "$(find "$CLOUD/tmp" -type f 2>/dev/null | head -n 1)"
coffer_unmount || fail "coffer unmount exit $?"

# ---------------------------------------------------------------- second device
log "second device: fresh --state, same vault"
STATE=$T/state-device2
MNT=$T/mnt2
coffer_mount || fatal "mount on the second device"
require_mounted
check "second device: diff -r against the plain tree" diff -r --no-dereference "$T/ref" "$MNT"
tree_digest "$MNT" >"$T/digest.4"
assert_file_eq "$T/digest.3" "$T/digest.4" "second device sees the same tree digest"
(cd "$T/ref" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sha.ref2"
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sha.dev2"
assert_file_eq "$T/sha.ref2" "$T/sha.dev2" "second device: sha256sum of every file"
assert_eq persistence "$(getfattr --absolute-names --only-values -n user.tag "$MNT/docs/note.txt" 2>&1)" "second device: xattr"
assert_eq ../docs/note.txt "$(readlink "$MNT/photos/link-to-note")" "second device: symlink target"
assert_eq "$(stat -c %i "$MNT/docs/note.txt")" "$(stat -c %i "$MNT/docs/hardlink-to-note")" "second device: hard link is one inode"
check "second device has its own index" test -n "$(find "$STATE" -name '*.db' | head -n 1)"
coffer_unmount || fail "second device: coffer unmount exit $?"

# The second device's state is reused on its next mount (not rebuilt), and
# the unmounted-vault sync works with that state.
check "coffer sync VAULT (not mounted) with the second device's state" \
    coffer sync "$CLOUD" --password-file "$PW" --state "$STATE"
coffer_mount || fatal "second device, second mount"
check "second device, second mount: diff -r" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "coffer unmount exit $?"

# ---------------------------------------------------------------- vault geometry
# init --block-size / --extent-size: a vault with 4 KiB blocks and 64 KiB
# extents holds a file over many extents, changed in the middle, across a
# new device; a bad geometry is a usage error that creates nothing.
log "a vault with 4 KiB blocks and 64 KiB extents"
CLOUD=$T/cloud-geometry STATE=$T/state-geometry MNT=$T/mnt-geometry
rm -f "$RK"
coffer_init --block-size 4096 --extent-size 65536 || fatal "init with --block-size 4096 --extent-size 65536"
info=$(coffer info "$CLOUD" 2>&1)
assert_match "block size: +4 KiB" "$info" "coffer info shows the block size"
assert_match "extent size: +64 KiB" "$info" "coffer info shows the extent size"
head -c 1000000 /dev/urandom >"$T/geo.ref"
coffer_mount || fatal "mount the 64 KiB-extent vault"
cp "$T/geo.ref" "$MNT/geo" && sync
check "sync of a file over 16 extents" coffer sync "$MNT"
printf 'changed in the middle' | dd of="$T/geo.ref" bs=1 seek=500000 conv=notrunc status=none
printf 'changed in the middle' | dd of="$MNT/geo" bs=1 seek=500000 conv=notrunc status=none
coffer_unmount || fail "coffer unmount exit $?"
STATE=$T/state-geometry2
coffer_mount || fatal "a new device on the 64 KiB-extent vault"
assert_file_eq "$T/geo.ref" "$MNT/geo" "the new device reads the changed file"
coffer_unmount || fail "coffer unmount exit $?"
assert_fails_with "$EX_USAGE" "$COFFER" init "$T/cloud-bad" --insecure-fast-kdf --password-file "$PW" \
    --recovery-key-file "$T/rk-bad" --extent-size 1000
assert_match "extent-size" "$LAST_OUTPUT" "the refusal names --extent-size"
check_fails "nothing created for a refused geometry" test -e "$T/cloud-bad"

finish
