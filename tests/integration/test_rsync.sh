#!/usr/bin/env bash
# rsync as a client: a source tree copied in with `rsync -a`, verified with
# `rsync --checksum` (nothing left to transfer), copied back out and compared
# with `diff -r`; then the same after a remount on a new device.
source "$(dirname "$0")/lib.sh"

SRC=$T/src
mkdir -p "$SRC"
if [ -d /usr/include/boost/asio ]; then
    cp -a /usr/include/boost/asio "$SRC/"
else
    cp -a /usr/share/doc "$SRC/" 2>/dev/null || true
fi
head -c 5000000 /dev/urandom >"$SRC/random.bin"
ln -s asio "$SRC/link-to-asio"
chmod 0751 "$SRC/asio" 2>/dev/null || true

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

check "rsync -a into the mount" rsync -a "$SRC/" "$MNT/copy/"
out=$(rsync -a --checksum --dry-run --itemize-changes "$SRC/" "$MNT/copy/")
assert_eq "" "$out" "rsync --checksum finds nothing to transfer"
check "rsync -a out of the mount" rsync -a "$MNT/copy/" "$T/back/"
check "diff -r of the round trip" diff -r "$SRC" "$T/back"
check "a second rsync -a --checksum transfers nothing" bash -c "[ -z \"\$(rsync -a --checksum --itemize-changes '$SRC/' '$MNT/copy/')\" ]"
coffer_unmount || fail "unmount"

STATE=$T/state-2
coffer_mount || fatal "mount as a new device"
out=$(rsync -a --checksum --dry-run --itemize-changes "$SRC/" "$MNT/copy/")
assert_eq "" "$out" "new device: rsync --checksum finds nothing to transfer"
coffer_unmount || fail "unmount new device"

finish
