#!/usr/bin/env bash
# Crash: data acknowledged by fsync survives kill -9 of the daemon. The stale
# mount ("Transport endpoint is not connected") is cleaned by
# `coffer unmount`, the next mount needs no manual repair, and after a sync
# the vault is fsck-clean.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

# fsync_path PATH...: fsync each path (files and directories) via python3
fsync_path() { python3 -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)' "$@"; }

kill9_daemon() {
    local pid
    pid=$(daemon_pid)
    [ -n "$pid" ] || { fail "no daemon.pid in $STATE"; return 1; }
    kill -KILL "$pid" 2>/dev/null
    wait_gone "$pid" 30 || { fail "daemon $pid survived kill -9"; return 1; }
    pass "kill -9 of the daemon ($pid)"
}

round=0
crash_round() {  # one write/fsync/kill -9/remount cycle
    round=$((round + 1))
    log "round $round: write, fsync, kill -9"
    local d=$MNT/round$round
    mkdir -p "$d"
    head -c 5000000 /dev/urandom >"$T/ref$round.a"
    head -c 70000 /dev/urandom >"$T/ref$round.b"
    # a: dd with conv=fsync; b: python os.fsync; both directories fsynced
    dd if="$T/ref$round.a" of="$d/a.bin" bs=1M conv=fsync status=none || fail "dd conv=fsync"
    python3 -c '
import os, sys
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
os.write(fd, open(sys.argv[1], "rb").read())
os.fsync(fd); os.close(fd)' "$T/ref$round.b" "$d/b.bin" || fail "python write+fsync"
    fsync_path "$d" "$MNT" || fail "fsync of the directories"
    # an overwrite in the middle of a file fsynced earlier
    if [ "$round" -gt 1 ]; then
        local prev=$MNT/round$((round - 1))/a.bin
        printf 'OVERWRITTEN-%d' "$round" | dd of="$prev" bs=1 seek=1234567 conv=notrunc,fsync status=none
        printf 'OVERWRITTEN-%d' "$round" | dd of="$T/ref$((round - 1)).a" bs=1 seek=1234567 conv=notrunc status=none
    fi
    # unsynced writes still in flight at the time of the kill
    (head -c 50000000 /dev/zero >"$d/in-flight.bin" 2>/dev/null &)
    sleep 0.3
    kill9_daemon || return 1
    out=$(timeout 10 ls "$MNT" 2>&1); rc=$?
    check_fails "the mount is stale after kill -9" test "$rc" -eq 0
    assert_match 'not connected|Input/output' "$out" "ls says Transport endpoint is not connected"
    out=$(coffer unmount "$MNT" 2>&1); rc=$?
    assert_eq 0 "$rc" "coffer unmount cleans the stale mount (output: ${out:0:200})"
    check_fails "nothing mounted after coffer unmount of the stale mount" is_mounted "$MNT"
    coffer_mount || { fail "mount after kill -9"; return 1; }
    require_mounted
    local r
    for r in $(seq 1 "$round"); do
        assert_file_eq "$T/ref$r.a" "$MNT/round$r/a.bin" "round $round: fsynced file a of round $r (dd conv=fsync)"
        assert_file_eq "$T/ref$r.b" "$MNT/round$r/b.bin" "round $round: fsynced file b of round $r (os.fsync)"
    done
    assert_eq 640 "$(stat -c %a "$MNT/round$round/b.bin" 2>&1)" "mode of the fsynced file"
    check "the half-written file is readable (any length)" timeout 60 cat "$MNT/round$round/in-flight.bin"
}

crash_round
crash_round
# a crash right after a sync: published state plus staged changes after it
check "coffer sync" coffer sync "$MNT"
crash_round

# kill -9 during a publish
log "kill -9 during coffer sync"
head -c 20000000 /dev/urandom >"$MNT/for-publish.bin"
fsync_path "$MNT/for-publish.bin" "$MNT"
cp "$MNT/for-publish.bin" "$T/for-publish.ref"
(timeout 60 "$COFFER" sync "$MNT" >/dev/null 2>&1 &)
sleep 0.2
kill9_daemon
coffer unmount "$MNT" >/dev/null 2>&1
check_fails "nothing mounted after the crash during sync" is_mounted "$MNT"
coffer_mount || fatal "mount after the crash during sync"
assert_file_eq "$T/for-publish.ref" "$MNT/for-publish.bin" "the file being published survives"
check "vault's tmp/ leftovers are harmless: sync succeeds" coffer sync "$MNT"
coffer_unmount || fail "final unmount exit $?"
check "after the crashes and a sync, fsck is clean" coffer fsck "$CLOUD" --password-file "$PW"

# a new device sees everything that was fsynced and synced
STATE=$T/state-device2
coffer_mount || fatal "second device mount"
assert_file_eq "$T/ref1.a" "$MNT/round1/a.bin" "second device: round 1 file (with the later overwrite)"
assert_file_eq "$T/ref3.b" "$MNT/round3/b.bin" "second device: round 3 file"
assert_file_eq "$T/for-publish.ref" "$MNT/for-publish.bin" "second device: the file of the interrupted publish"
coffer_unmount || fail "second device unmount exit $?"

finish
