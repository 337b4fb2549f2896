#!/usr/bin/env bash
# Scale and a full disk: 100 000 entries in one directory (create, list,
# look up, publish, rebuild on a second device); and a local state on a full
# filesystem: write and fsync fail with ENOSPC, never silently, and nothing
# acknowledged before is lost.
source "$(dirname "$0")/lib.sh"

log "full disk: the local state on a 40 MiB tmpfs"
coffer_init || fatal "coffer init"
SMALL=$T/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=40m coffer-test-small "$SMALL" || fatal "mount tmpfs"
echo "$SMALL" >>"$T/.mounts"
STATE=$SMALL/state
coffer_mount || fatal "mount with the state on the small tmpfs"
head -c 4000000 /dev/urandom >"$T/safe.bin"
check "write + fsync 4 MB" dd if="$T/safe.bin" of="$MNT/safe.bin" bs=1M conv=fsync status=none
touch "$MNT/created-before"
err=$(dd if=/dev/urandom of="$MNT/fill.bin" bs=1M count=100 conv=fsync 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "No space left on device" <<<"$err"; then
    pass "filling the disk fails with ENOSPC"
else
    fail "filling the disk: rc=$rc" "$err"
fi
assert_file_eq "$T/safe.bin" "$MNT/safe.bin" "the fsynced file is intact on a full disk"
sync; echo 2 >/proc/sys/vm/drop_caches  # forget cached dentries: ask the daemon itself
check "a file created before the disk filled is still there" test -e "$MNT/created-before"
check "rm works on a full disk" rm -f "$MNT/created-before"
rm -f "$MNT/fill.bin"
check "coffer sync with the disk nearly full" coffer sync "$MNT"
check "writing works again after sync frees the log" dd if="$T/safe.bin" of="$MNT/again.bin" bs=1M conv=fsync status=none
coffer_unmount || fail "unmount after the full disk"
coffer_mount || fatal "remount after the full disk"
assert_file_eq "$T/safe.bin" "$MNT/safe.bin" "after remount: the fsynced file"
assert_file_eq "$T/safe.bin" "$MNT/again.bin" "after remount: the file written after sync"
coffer_unmount || fail "final unmount"
umount "$SMALL" || fail "umount tmpfs"


CLOUD=$T/cloud-big
RK=$T/recovery-big.key
STATE=$T/state-big
mkdir -p "$CLOUD"
coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

# COFFER_SCALE_ENTRIES scales the big directory (default 100 000; the
# sanitized CI run uses fewer: the point there is the code path, not the size).
N=${COFFER_SCALE_ENTRIES:-100000}
[ "$N" -ge 1000 ] || fatal "COFFER_SCALE_ENTRIES must be >= 1000"
log "$N entries in one directory"
mkdir "$MNT/big" || fatal "mkdir"
python3 - "$MNT/big" "$N" <<'PY' || fail "creating $N files"
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(os.path.join(d, "entry-%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY
assert_eq "$N" "$(ls -f "$MNT/big" | grep -c '^entry-')" "ls lists $N entries"
check "a lookup in the big directory" test -f "$MNT/big/entry-$(printf %06d $((N * 54321 / 100000)))"
check_fails "a missing name in the big directory" test -e "$MNT/big/entry-$(printf %06d "$N")"
rm "$MNT/big/entry-000007"
assert_eq $((N - 1)) "$(find "$MNT/big" -type f | wc -l)" "find after one unlink"
check "coffer sync publishes $N creates" coffer sync "$MNT"
coffer_unmount || fail "unmount"

STATE=$T/state-big-2
coffer_mount || fatal "mount as a second device"
assert_eq $((N - 1)) "$(ls -f "$MNT/big" | grep -c '^entry-')" "second device: $((N - 1)) entries"
check_fails "second device: the unlinked entry stays gone" test -e "$MNT/big/entry-000007"
coffer_unmount || fail "unmount second device"

finish
