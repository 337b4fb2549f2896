#!/usr/bin/env bash
# Tampering by the cloud: a flipped byte in one file's object gives EIO on
# that file only (never wrong plaintext), and so does a truncated or padded
# object (its header states its length); the daemon log names the file and
# says "tampered", `coffer fsck` exits 11; a deleted object gives EIO
# ("pending": it may not have arrived yet) and fsck exits 16; a damaged
# journal segment is refused. Each case mounts with a fresh --state (a new
# device), so nothing comes from a local cache.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

objects() { (cd "$CLOUD" && find objects -type f | sort); }

head -c 300000 /dev/urandom >"$T/good.ref"
head -c 300000 /dev/urandom >"$T/victim.ref"
# Published in two syncs, so the second file's objects are the new ones
# (whatever the packing rules put together).
cp "$T/good.ref" "$MNT/good-file.bin"
check "sync after the first file" coffer sync "$MNT"
objects >"$T/objects.1"
cp "$T/victim.ref" "$MNT/victim-file.bin"
check "sync after the second file" coffer sync "$MNT"
objects >"$T/objects.2"
coffer_unmount || fail "coffer unmount exit $?"
comm -13 "$T/objects.1" "$T/objects.2" >"$T/objects.victim"
[ -s "$T/objects.victim" ] || fatal "the second sync published no new object (objects before: $(wc -l <"$T/objects.1"), after: $(wc -l <"$T/objects.2"))"
# the largest new object holds the victim's content
victim=$(cd "$CLOUD" && xargs -a "$T/objects.victim" stat -c '%s %n' | sort -rn | head -n 1 | cut -d' ' -f2-)
log "victim object: $victim ($(stat -c %s "$CLOUD/$victim") bytes)"
check "clean vault: fsck exits 0" coffer fsck "$CLOUD" --password-file "$PW"

fresh=0
# mount_fresh: mount with a new, empty state folder (a new device)
mount_fresh() {
    fresh=$((fresh + 1))
    STATE=$T/state-fresh$fresh
    coffer_mount "$@"
}
flip_byte() {  # FILE OFFSET: xor the byte at OFFSET with 0x01
    local f=$1 off=$2 b
    b=$(dd if="$f" bs=1 skip="$off" count=1 status=none | od -An -tu1 | tr -d ' ')
    printf "\\x$(printf '%02x' $((b ^ 1)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# ---------------------------------------------------------------- flipped byte
log "flip one byte in the middle of the victim's object"
cp -p "$CLOUD/$victim" "$T/victim.orig"
size=$(stat -c %s "$CLOUD/$victim")
flip_byte "$CLOUD/$victim" $((size / 2))
check_fails "the object really changed" cmp -s "$T/victim.orig" "$CLOUD/$victim"
mount_fresh || fatal "mount (fresh state) of the tampered vault"
require_mounted
out=$(timeout 60 cat "$MNT/victim-file.bin" 2>&1 >"$T/victim.read"); rc=$?
check_fails "cat of the tampered file fails" test "$rc" -eq 0
assert_match 'Input/output error' "$out" "the error is EIO"
check_fails "no wrong plaintext: what was read is not a wrong version of the file" \
    bash -c "[ -s '$T/victim.read' ] && ! cmp -s '$T/victim.read' <(head -c \$(stat -c %s '$T/victim.read') '$T/victim.ref')"
assert_file_eq "$T/good.ref" "$MNT/good-file.bin" "the other file reads fine"
py_check "reads of the tampered file fail block-wise, never return other bytes" '
fd = os.open(M + "/victim-file.bin", os.O_RDONLY)
ref = open(T + "/victim.ref", "rb").read()
bad = 0
for off in range(0, len(ref), 4096):
    try:
        got = os.pread(fd, 4096, off)
        assert got == ref[off:off + 4096], "WRONG PLAINTEXT at %d" % off
    except OSError as e:
        assert e.errno == errno.EIO, e
        bad += 1
os.close(fd)
assert bad > 0, "no block failed"'
check "the daemon log says tampered" grep -qi 'tampered' "$STATE/coffer.log"
check "the daemon log names the file on its tampered line" \
    bash -c "grep -i tampered '$STATE/coffer.log' | grep -q victim-file.bin"
check "ls of the mount still works" ls -l "$MNT"
coffer_unmount || fail "coffer unmount exit $?"
assert_fails_with "$EX_CORRUPT" coffer fsck "$CLOUD" --password-file "$PW"
assert_match 'victim-file.bin' "$LAST_OUTPUT" "fsck names the damaged file"
check_fails "fsck does not blame the good file" grep -q 'good-file.bin' <<<"$LAST_OUTPUT"

# ---------------------------------------------------------------- truncated object
log "truncate the victim's object"
cp -p "$T/victim.orig" "$CLOUD/$victim"
check "restored object: fsck clean again" coffer fsck "$CLOUD" --password-file "$PW"
truncate -s $((size - 100)) "$CLOUD/$victim"
assert_fails_with "$EX_CORRUPT" coffer fsck "$CLOUD" --password-file "$PW"
mount_fresh || fatal "mount (fresh state) with a truncated object"
check_fails "cat of the file with a truncated object fails" timeout 60 cat "$MNT/victim-file.bin"
assert_file_eq "$T/good.ref" "$MNT/good-file.bin" "the other file still reads fine"
coffer_unmount || fail "coffer unmount exit $?"

# ---------------------------------------------------------------- extended object
log "append bytes to the victim's object (its header states its length)"
cp -p "$T/victim.orig" "$CLOUD/$victim"
printf 'padding' >>"$CLOUD/$victim"
assert_fails_with "$EX_CORRUPT" coffer fsck "$CLOUD" --password-file "$PW"
assert_match 'victim-file.bin' "$LAST_OUTPUT" "fsck names the file whose object was padded"
mount_fresh || fatal "mount (fresh state) with an extended object"
out=$(timeout 60 cat "$MNT/victim-file.bin" 2>&1 >/dev/null); rc=$?
check_fails "cat of the file with an extended object fails" test "$rc" -eq 0
assert_match 'Input/output error' "$out" "the error is EIO"
assert_file_eq "$T/good.ref" "$MNT/good-file.bin" "the other file still reads fine"
coffer_unmount || fail "coffer unmount exit $?"
check "the daemon log says tampered and gives the lengths" \
    bash -c "grep -i tampered '$STATE/coffer.log' | grep -q 'its header says'"

# ---------------------------------------------------------------- swapped objects
log "swap the victim's object with another object"
cp -p "$T/victim.orig" "$CLOUD/$victim"
other=$(grep -vxF "$victim" "$T/objects.2" | head -n 1)
if [ -n "$other" ]; then
    cp -p "$CLOUD/$other" "$T/other.orig"
    cp "$T/other.orig" "$CLOUD/$victim"
    cp "$T/victim.orig" "$CLOUD/$other"
    assert_fails_with "$EX_CORRUPT" coffer fsck "$CLOUD" --password-file "$PW"
    mount_fresh || fatal "mount (fresh state) with swapped objects"
    check_fails "cat of the victim with a swapped object fails" timeout 60 cat "$MNT/victim-file.bin"
    coffer_unmount || fail "coffer unmount exit $?"
    cp -p "$T/other.orig" "$CLOUD/$other"
    cp -p "$T/victim.orig" "$CLOUD/$victim"
else
    fail "no second object to swap with"
fi

# ---------------------------------------------------------------- deleted object
log "delete the victim's object (pending)"
cp -p "$T/victim.orig" "$CLOUD/$victim"
check "restored: fsck clean" coffer fsck "$CLOUD" --password-file "$PW"
mv "$CLOUD/$victim" "$T/victim.moved"
mount_fresh || fatal "mount (fresh state) with a missing object"
require_mounted
out=$(timeout 60 cat "$MNT/victim-file.bin" 2>&1 >/dev/null); rc=$?
check_fails "cat of the file whose object is missing fails" test "$rc" -eq 0
assert_match 'Input/output error' "$out" "the error is EIO"
assert_file_eq "$T/good.ref" "$MNT/good-file.bin" "the other file reads fine"
check "the daemon log says pending" grep -qi 'pending' "$STATE/coffer.log"
check_fails "the daemon log does not call a missing object tampered" grep -qi 'tampered' "$STATE/coffer.log"
# the object arrives late: the same mount reads it now (pending is retried)
mv "$T/victim.moved" "$CLOUD/$victim"
sleep 1
assert_file_eq "$T/victim.ref" "$MNT/victim-file.bin" "after the object arrives, the same mount reads the file"
coffer_unmount || fail "coffer unmount exit $?"
mv "$CLOUD/$victim" "$T/victim.moved"
assert_fails_with "$EX_PENDING" coffer fsck "$CLOUD" --password-file "$PW"
assert_match 'victim-file.bin|pending' "$LAST_OUTPUT" "fsck reports the pending file"
mv "$T/victim.moved" "$CLOUD/$victim"
check "object back: fsck clean" coffer fsck "$CLOUD" --password-file "$PW"

# ---------------------------------------------------------------- journal segment
log "flip one byte in a journal segment"
seg=$(cd "$CLOUD" && find journal -type f | sort | tail -n 1)
if [ -n "$seg" ]; then
    cp -p "$CLOUD/$seg" "$T/seg.orig"
    flip_byte "$CLOUD/$seg" $(( $(stat -c %s "$CLOUD/$seg") / 2 ))
    assert_fails_with "$EX_CORRUPT" coffer fsck "$CLOUD" --password-file "$PW"
    fresh=$((fresh + 1)); echo "$T/state-fresh$fresh" >>"$T/.states"
    assert_fails_with "$EX_CORRUPT" coffer mount "$CLOUD" "$MNT" --password-file "$PW" --state "$T/state-fresh$fresh"
    _record_pid "$T/state-fresh$fresh"
    check_fails "a tampered segment: nothing mounted" is_mounted "$MNT"
    cp -p "$T/seg.orig" "$CLOUD/$seg"
    check "segment restored: fsck clean" coffer fsck "$CLOUD" --password-file "$PW"
else
    fail "no journal segment in the vault"
fi

# ---------------------------------------------------------------- header
log "flip one byte in the header's authenticated body"
cp -p "$CLOUD/coffer.vault" "$T/header.orig"
flip_byte "$CLOUD/coffer.vault" $(( $(stat -c %s "$CLOUD/coffer.vault") - 20 ))
out=$(coffer fsck "$CLOUD" --password-file "$PW" 2>&1); rc=$?
check "an edited header is refused (exit 10 or 11, got $rc)" test "$rc" -eq 10 -o "$rc" -eq 11
cp -p "$T/header.orig" "$CLOUD/coffer.vault"
check "header restored: fsck clean" coffer fsck "$CLOUD" --password-file "$PW"

finish
