#!/usr/bin/env bash
# Two devices, one vault, kept in step by real Syncthing (issue 13 part 7):
# each device has its own copy of the vault folder, its own Syncthing
# instance and its own coffer --state; the two instances talk over loopback
# in a private network namespace (lib_sync_engines.sh). One device works at
# a time here (coffer unmount, Syncthing carries the change, the other
# mounts): A writes a tree, B sees it byte for byte and changes it, A sees
# B's changes. Syncthing's marker folder, its temp files and the files a
# desktop drops into a synced folder must not get in the way. Then both
# devices are mounted at once with auto-sync, edit at once, and converge.
# shellcheck disable=SC2034  # read by lib_sync_engines.sh
SYNC_ENGINES=syncthing
source "$(dirname "$0")/lib_sync_engines.sh"

assert_confined

A_DIR=$T/deviceA/vault A_STATE=$T/deviceA/state A_MNT=$T/deviceA/mnt
B_DIR=$T/deviceB/vault B_STATE=$T/deviceB/state B_MNT=$T/deviceB/mnt
# device X: the coffer helpers of lib.sh act on that device's copy
device() {
    case $1 in
        A) CLOUD=$A_DIR STATE=$A_STATE MNT=$A_MNT ;;
        B) CLOUD=$B_DIR STATE=$B_STATE MNT=$B_MNT ;;
    esac
}
# The marker folder Syncthing's GUI makes when a folder is added.
mkdir -p "$A_DIR/.stfolder" "$B_DIR/.stfolder" "$A_MNT" "$B_MNT"

log "two Syncthing instances on loopback"
st_init A "$A_DIR" 18384 22001 || fatal "syncthing generate (A)"
st_init B "$B_DIR" 18385 22002 || fatal "syncthing generate (B)"
st_configure A
st_configure B
st_start A || fatal "syncthing A did not start"
st_start B || fatal "syncthing B did not start"
st_wait_connected 60 >"$T/connected.out" 2>&1 || { st_dump_logs; fatal "the Syncthing instances did not connect: $(cat "$T/connected.out")"; }
pass "the two Syncthing instances connected"
# (JSON is read with python: lib.sh's assert_match pipes into grep -q, which
# can end before a long input is written, and pipefail then calls it a miss.)
peer_addr=$(st_rest A GET /rest/system/connections | python3 -c 'import json,sys
print(json.load(sys.stdin)["connections"][sys.argv[1]]["address"])' "${ST_ID[B]}" 2>&1)
assert_match '^127\.0\.0\.1:[0-9]+$' "$peer_addr" "A reaches B at a loopback address"
listening=$(ss -Htuln | awk '{ print $5 }' | sort -u)
check "every listening socket in the namespace is on 127.0.0.1" \
    test -z "$(printf '%s\n' "$listening" | grep -v '^127\.0\.0\.1:' | grep -v '^$')"
off_keys="globalAnnounceEnabled localAnnounceEnabled relaysEnabled natEnabled urAccepted crashReportingEnabled autoUpgradeIntervalH"
for n in A B; do
    # shellcheck disable=SC2086
    assert_eq "false false false false -1 false 0" \
        "$(st_rest "$n" GET /rest/config | python3 -c 'import json,sys
o = json.load(sys.stdin)["options"]
print(" ".join(json.dumps(o[k]) for k in sys.argv[1:]))' $off_keys 2>&1)" \
        "syncthing $n running config: $off_keys are off"
done

# wait_sync WHAT: Syncthing has carried the last change both ways.
wait_sync() {
    local out
    if out=$(st_wait_in_sync 90 2>&1); then
        pass "Syncthing in sync: $1 (${out#in sync after })"
    else
        st_dump_logs 15
        fail "Syncthing in sync: $1" "$out"
        return 1
    fi
}
# shas DIR: the sha256 of every regular file below DIR, by relative path.
shas() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

# ---------------------------------------------------------------- init on A
device A
coffer_init || fatal "coffer init in A's Syncthing folder"
wait_sync "the new vault" || fatal "the new vault did not reach B"
assert_file_eq "$A_DIR/coffer.vault" "$B_DIR/coffer.vault" "B's copy holds the vault header A made"
check "B's copy has the vault's folders" test -d "$B_DIR/objects" -a -d "$B_DIR/journal"

# ---------------------------------------------------------------- A writes
make_tree() {
    local d=$1
    mkdir -p "$d/docs/deep/deeper/deepest" "$d/photos/2026" "$d/empty-dir"
    printf 'small text\n' >"$d/docs/note.txt"
    cp "$T/r3" "$d/photos/2026/random-3M.bin"
    head -c 70000 "$T/r3" >"$d/docs/deep/part.bin"
    for i in $(seq 1 40); do printf 'file %d\n' "$i" >"$d/docs/deep/deeper/f$i"; done
    printf 'at the bottom\n' >"$d/docs/deep/deeper/deepest/bottom.txt"
    : >"$d/docs/empty"
    ln -s ../docs/note.txt "$d/photos/link-to-note"
    chmod 600 "$d/docs/deep/part.bin"
}
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/r3"
mkdir -p "$T/ref"
make_tree "$T/ref"

log "device A: mount, write, unmount"
coffer_mount || fatal "mount on A"
require_mounted
make_tree "$MNT"
check "A: the mount holds the tree" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "A: coffer unmount exit $?"
check_fails "A: unmounted" is_mounted "$MNT"
wait_sync "A's first session" || fatal "A's changes did not reach B"
check "B's copy holds A's journal segments" test -n "$(find "$B_DIR/journal" -type f ! -name '.*' | head -n 1)"

# ---------------------------------------------------------------- B reads, changes
log "device B: its own state, the copy Syncthing made"
device B
coffer_mount || fatal "mount on B"
require_mounted
check "B: diff -r against the tree A wrote" diff -r --no-dereference "$T/ref" "$MNT"
shas "$T/ref" >"$T/sha.ref"
shas "$MNT" >"$T/sha.b"
assert_file_eq "$T/sha.ref" "$T/sha.b" "B: sha256 of every file equals what A wrote"
assert_eq ../docs/note.txt "$(readlink "$MNT/photos/link-to-note")" "B: symlink target"
assert_eq 600 "$(stat -c %a "$MNT/docs/deep/part.bin")" "B: file mode"
tree_digest "$T/ref" >"$T/digest.ref"
tree_digest "$MNT" >"$T/digest.b"
assert_file_eq "$T/digest.ref" "$T/digest.b" "B: tree digest (types, modes, sizes, targets, sha256)"

change_tree() {
    local d=$1
    printf 'edited on B\n' >>"$d/docs/note.txt"
    mv "$d/docs/deep/deeper/f3" "$d/docs/f3-renamed"
    mv "$d/docs/deep/deeper/deepest" "$d/photos/moved-dir"
    rm "$d/docs/deep/deeper/f4" "$d/docs/empty"
    rmdir "$d/empty-dir"
    mkdir "$d/from-B"
    printf 'new on B\n' >"$d/from-B/new.txt"
    printf 'PATCH' | dd of="$d/photos/2026/random-3M.bin" bs=1 seek=2000000 conv=notrunc status=none
    truncate -s 5000 "$d/docs/deep/part.bin"
}
change_tree "$T/ref"
change_tree "$MNT"
check "B: the mount holds the changed tree" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "B: coffer unmount exit $?"
wait_sync "B's changes" || fatal "B's changes did not reach A"

# ---------------------------------------------------------------- A sees B's changes
log "device A: remount with A's own state"
device A
coffer_mount || fatal "second mount on A"
require_mounted
check "A: diff -r against the tree B changed" diff -r --no-dereference "$T/ref" "$MNT"
shas "$T/ref" >"$T/sha.ref2"
shas "$MNT" >"$T/sha.a2"
assert_file_eq "$T/sha.ref2" "$T/sha.a2" "A: sha256 of every file after B's changes"
tree_digest "$T/ref" >"$T/digest.ref2"
tree_digest "$MNT" >"$T/digest.a2"
assert_file_eq "$T/digest.ref2" "$T/digest.a2" "A: tree digest after B's changes"
check_fails "A: the file B deleted is gone" test -e "$MNT/docs/deep/deeper/f4"
check_fails "A: the directory B moved is gone from its old place" test -e "$MNT/docs/deep/deeper/deepest"
assert_eq "at the bottom" "$(cat "$MNT/photos/moved-dir/bottom.txt" 2>&1)" "A: the moved directory's file"
printf 'second edit on A\n' >>"$MNT/docs/note.txt"
printf 'second edit on A\n' >>"$T/ref/docs/note.txt"
coffer_unmount || fail "A: coffer unmount exit $?"
wait_sync "A's second session" || fatal "A's second session did not reach B"

# ---------------------------------------------------------------- foreign files
# What a desktop and Syncthing leave in a synced folder: Explorer's and
# Finder's files in the vault root (these Syncthing carries to the other
# device), and Syncthing's temp files of a transfer cut short (never
# carried, left beside where the received file was going).
log "device B: foreign files in the vault folder"
printf '[.ShellClassInfo]\r\nIconResource=C:\\Windows\\System32\\shell32.dll,4\r\n' >"$B_DIR/desktop.ini"
head -c 6148 /dev/urandom >"$B_DIR/.DS_Store"
head -c 338 /dev/urandom >"$B_DIR/.syncthing.coffer.vault.tmp"
obj_dir=$(find "$B_DIR/objects" -mindepth 1 -maxdepth 1 -type d | head -n 1)
head -c 4096 /dev/urandom >"$obj_dir/.syncthing.0123456789abcdef.tmp"
seg_dir=$(find "$B_DIR/journal" -mindepth 1 -maxdepth 1 -type d | head -n 1)
head -c 900 /dev/urandom >"$seg_dir/.syncthing.00000000000000ff.tmp"
head -c 700 /dev/urandom >"$B_DIR/tmp/.syncthing.half-written.tmp"
wait_sync "desktop.ini and .DS_Store" || fatal "the planted files did not settle"
check "desktop.ini reached A's copy" test -f "$A_DIR/desktop.ini"
check "Syncthing did not carry its own temp file" test ! -e "$A_DIR/.syncthing.coffer.vault.tmp"

device B
coffer_mount || fatal "B: mount with foreign files in the vault folder"
require_mounted
check "B: diff -r with foreign files in the vault folder" diff -r --no-dereference "$T/ref" "$MNT"
check_fails "B: no foreign file shows in the mount" test -e "$MNT/desktop.ini" -o -e "$MNT/.DS_Store"
printf 'written beside foreign files\n' >"$MNT/from-B/after-foreign.txt"
printf 'written beside foreign files\n' >"$T/ref/from-B/after-foreign.txt"
check "B: coffer sync with foreign files in the vault folder" coffer sync "$MNT"
coffer_unmount || fail "B: coffer unmount with foreign files, exit $?"
check "B: the foreign files are left alone" test -f "$B_DIR/desktop.ini" -a -f "$B_DIR/.DS_Store" \
    -a -f "$B_DIR/.syncthing.coffer.vault.tmp" -a -f "$seg_dir/.syncthing.00000000000000ff.tmp"
wait_sync "B's session beside foreign files" || fatal "B's last session did not reach A"

device A
coffer_mount || fatal "A: mount with foreign files in the vault folder"
require_mounted
check "A: diff -r after B's session beside foreign files" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "A: coffer unmount exit $?"

check "A's copy: coffer fsck with desktop.ini and .DS_Store in the root" \
    coffer fsck "$A_DIR" --password-file "$PW"
check "B's copy: coffer fsck with Syncthing's temp files in objects/, journal/, tmp/" \
    coffer fsck "$B_DIR" --password-file "$PW"
# fsck_counts_only_segments VAULT: fsck's "checked N segments" counts the
# segment files, not Syncthing's temp files beside them.
fsck_counts_only_segments() {
    local out n
    out=$(coffer fsck "$1" --password-file "$PW" 2>&1)
    n=$(find "$1/journal" -mindepth 2 -type f -regextype egrep -regex '.*/[0-9a-f]{16}' | wc -l)
    printf '%s\n' "$out" | grep -q "checked $n segments" || { echo "expected $n segments in: $out"; return 1; }
}
# waits for issue 13/14: fsck counts .syncthing.*.tmp in journal/<device>/ as
# a segment and in objects/xx/ as an unreferenced object (a name coffer never
# writes is not coffer's file).
waiting_check "issue 13/14" "B's copy: fsck counts only segment files, not .syncthing.*.tmp" \
    fsck_counts_only_segments "$B_DIR"

# Finder leaves a .DS_Store in every folder it opens, vault folders too: a
# file where coffer expects only folders (objects/, journal/).
log "device B: .DS_Store files in objects/ and journal/"
head -c 6148 /dev/urandom >"$B_DIR/objects/.DS_Store"
head -c 6148 /dev/urandom >"$B_DIR/journal/.DS_Store"
wait_sync ".DS_Store in objects/ and journal/" || fatal "the planted files did not settle"
device B
coffer_mount || fatal "B: mount with .DS_Store in objects/ and journal/"
require_mounted
check "B: diff -r with .DS_Store in objects/ and journal/" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "B: coffer unmount exit $?"
STATE=$T/deviceB/state-new
coffer_mount || fatal "B, fresh state: mount with .DS_Store in objects/ and journal/"
require_mounted
check "B, fresh state: diff -r with .DS_Store in objects/ and journal/" diff -r --no-dereference "$T/ref" "$MNT"
coffer_unmount || fail "B: coffer unmount exit $?"
# waits for issue 13/14: fsck stops at the first foreign file directly in
# objects/ or journal/ ("opening vault file objects/.DS_Store: Not a
# directory", exit 1) instead of ignoring it.
waiting_check "issue 13/14" "A's copy: coffer fsck with .DS_Store in objects/ and journal/" \
    coffer fsck "$A_DIR" --password-file "$PW"
waiting_check "issue 13/14" "B's copy: coffer fsck with .DS_Store in objects/ and journal/" \
    coffer fsck "$B_DIR" --password-file "$PW"

check "Syncthing made no conflict copies" \
    test -z "$(find "$A_DIR" "$B_DIR" -name '*.sync-conflict-*' | head -n 1)"

# ---------------------------------------------------------------- both at once
# Both devices mounted at once with auto-sync (-o sync_interval=2): each
# publishes on its own, Syncthing carries the segments, each daemon merges
# what arrives and tells its kernel. Both edit the same file before either
# has seen the other's edit (within one sync interval: the publishes come
# seconds later), which must make one conflict copy, visible in both.
# until_ok SECONDS DESC CMD...: CMD succeeds within SECONDS (polled).
until_ok() {
    local limit=$1 desc=$2 start=$SECONDS
    shift 2
    while ! "$@" >/dev/null 2>&1; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            fail "$desc (not within $limit s)" "$("$@" 2>&1)"
            return 1
        fi
        sleep 0.5
    done
    pass "$desc (after $((SECONDS - start)) s)"
}
content_is() { [ "$(cat "$1" 2>&1)" == "$2" ]; }
conflict_copy_in() { test -n "$(find "$1/docs" -name 'note (conflict * [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9]*).txt' | head -n 1)"; }
same_digest() {
    local a b
    a=$(coffer status --digest "$A_MNT" 2>&1) && b=$(coffer status --digest "$B_MNT" 2>&1) && [ "$a" == "$b" ]
}
log "both devices mounted at once, auto-sync every 2 s"
device A
coffer_mount -o sync_interval=2 || fatal "A: mount for the concurrent session"
device B
coffer_mount -o sync_interval=2 || fatal "B: mount for the concurrent session"
ls -la "$A_MNT" "$A_MNT/docs" "$A_MNT/from-B" "$B_MNT" "$B_MNT/docs" >/dev/null  # listings the kernels cache
cat "$A_MNT/docs/note.txt" "$B_MNT/docs/note.txt" >/dev/null
mkdir "$A_MNT/only-A" && printf 'A at once\n' >"$A_MNT/only-A/a.txt"
printf 'B at once\n' >"$B_MNT/from-B/b-at-once.txt"
printf 'A edits the note\n' >>"$A_MNT/docs/note.txt"
printf 'B edits the note\n' >>"$B_MNT/docs/note.txt"
until_ok 90 "A sees B's new file without a remount" content_is "$A_MNT/from-B/b-at-once.txt" "B at once"
until_ok 90 "B sees A's new folder and file without a remount" content_is "$B_MNT/only-A/a.txt" "A at once"
until_ok 90 "A: the conflict copy of the note shows" conflict_copy_in "$A_MNT"
until_ok 90 "B: the conflict copy of the note shows" conflict_copy_in "$B_MNT"
until_ok 90 "A and B converge: coffer status --digest equal" same_digest
notes_a=$(cat "$A_MNT"/docs/note*.txt 2>&1)
assert_match "A edits the note" "$notes_a" "A: A's edit of the note survives"
assert_match "B edits the note" "$notes_a" "A: B's edit of the note survives"
assert_eq "$(coffer conflicts "$A_MNT" 2>&1)" "$(coffer conflicts "$B_MNT" 2>&1)" "coffer conflicts: the same on A and B"
assert_eq 1 "$(coffer conflicts "$A_MNT" 2>/dev/null | wc -l)" "coffer conflicts: one copy"
tree_digest "$A_MNT" >"$T/digest.concurrent-a"
tree_digest "$B_MNT" >"$T/digest.concurrent-b"
assert_file_eq "$T/digest.concurrent-a" "$T/digest.concurrent-b" "A and B hold the same tree"
coffer_unmount "$A_MNT" >/dev/null || fail "A: coffer unmount exit $?"
coffer_unmount "$B_MNT" >/dev/null || fail "B: coffer unmount exit $?"
wait_sync "after the concurrent session"

# Nothing in either instance's log about discovery, relays, NAT or STUN,
# usage or crash reports: the switched-off features never started.
check_fails "Syncthing logs show no discovery, relay, NAT, STUN or reporting" \
    grep -iE 'relay|discover|announc|upnp|nat-pmp|stun|usage report|crash report' \
    "${ST_HOME[A]}/syncthing.log" "${ST_HOME[B]}/syncthing.log"
st_procs=$(_se_tree "${ST_PID[A]}"; _se_tree "${ST_PID[B]}")
assert_eq 6 "$(printf '%s\n' "$st_procs" | wc -l)" "each instance runs as timeout, monitor and syncthing"
check "syncthing A and its children end on TERM" st_stop A
check "syncthing B and its children end on TERM" st_stop B
alive=$(for p in $st_procs; do kill -0 "$p" 2>/dev/null && echo "$p"; done)
assert_eq "" "$alive" "no Syncthing process left"
finish
