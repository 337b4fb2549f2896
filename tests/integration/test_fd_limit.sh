#!/usr/bin/env bash
# A daemon whose open-files limit is low keeps reading every file. Vault
# objects stay open in a cache, with a second (O_DIRECT) descriptor each
# once read cold and large (util/source_file.h); the cache sizes itself to
# the limit (Core::open_object_budget) instead of running out of
# descriptors: with a fixed bound of 512 objects, a daemon limited to 200
# open files failed with EMFILE after about 85 large files.
source "$(dirname "$0")/lib.sh"

LIMIT=200
FILES=120  # each over 1 MiB: an object of its own

coffer_init || fatal "init failed"
coffer_mount || fatal "mount failed"
require_mounted
for i in $(seq $FILES); do
    head -c 1100000 /dev/urandom >"$MNT/f$i" || fatal "writing f$i failed"
done
(cd "$MNT" && sha256sum f*) | sort -k2 >"$T/expected"
check "publish" coffer sync "$MNT"
check "unmount" coffer_unmount

# The hard limit too: coffer raises the soft one to the hard one.
(ulimit -Sn $LIMIT && ulimit -Hn $LIMIT && coffer_mount) || fatal "mount with $LIMIT open files failed"
require_mounted
pid=$(daemon_pid)
assert_eq "$LIMIT" "$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")" "the daemon runs with a hard limit of $LIMIT open files"
sync
echo 3 >/proc/sys/vm/drop_caches
# 1 MiB reads: the kernel then asks for 512 KiB at a time, which go direct.
for i in $(seq $FILES); do
    echo "$(dd if="$MNT/f$i" bs=1M status=none | sha256sum | cut -d' ' -f1)  f$i"
done >"$T/got" 2>"$T/err"
sort -k2 "$T/got" -o "$T/got"
assert_file_eq "$T/expected" "$T/got" "all $FILES files read back cold, each from its own object"
check "no read failed" test ! -s "$T/err"
open=$(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)
check "the daemon holds fewer descriptors than its limit ($open)" test "$open" -lt $LIMIT
check "no descriptor ran out in the log" bash -c "! grep -qi 'too many open files' '$STATE/coffer.log'"
check "unmount" coffer_unmount
finish
