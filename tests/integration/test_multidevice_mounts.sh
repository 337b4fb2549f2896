#!/usr/bin/env bash
# Two devices mounted at once on one vault folder (issue 13 parts 2-4, 6):
# "laptop" and "desktop", each its own --state, both real FUSE mounts.
#  1. Sync by hand (--no-auto-sync, `coffer sync`), so the two edits are
#     surely concurrent: the same file edited on both makes one conflict
#     copy, the same in both mounted folders, listed by `coffer conflicts`
#     and counted by `coffer status`; a folder renamed on one while a file
#     in it is edited on the other converges; the digests agree; deleting
#     the copy on one removes it on the other; `coffer devices` names both.
#  2. Auto-sync (-o sync_interval=2): a change on one shows in the other's
#     mounted folder without a remount, also in a folder listing and a file
#     the kernel cached before the change (so the merge must invalidate them).
#  3. Unmounted: status --digest, conflicts and devices on the vault folder.
# New contents are longer than the old ones on purpose: a kernel that kept
# the old size of a cached file (the write-back cache trusts its own i_size)
# shows the new content cut short. COFFER_MDM_OPTS=no_writeback_cache (any
# -o value) mounts both devices with it, to tell such a failure apart.
source "$(dirname "$0")/lib.sh"

L_MNT=$T/laptop/mnt L_STATE=$T/laptop/state
D_MNT=$T/desktop/mnt D_STATE=$T/desktop/state
mkdir -p "$L_MNT" "$D_MNT"
WAIT_S=20

# mount_as laptop|desktop [args]: mounts that device's folder.
mount_as() {
    local name=$1
    shift
    case $name in
        laptop) MNT=$L_MNT STATE=$L_STATE ;;
        desktop) MNT=$D_MNT STATE=$D_STATE ;;
    esac
    coffer_mount --device-name "$name" ${COFFER_MDM_OPTS:+-o "$COFFER_MDM_OPTS"} "$@" || fatal "mount $name $*"
    require_mounted "$MNT"
}
# eventually DESC CMD...: CMD succeeds within WAIT_S seconds (polled).
eventually() {
    local desc=$1 i start=$SECONDS
    shift
    for ((i = 0; i < WAIT_S * 5; i++)); do
        if "$@" >/dev/null 2>&1; then
            pass "$desc (after $((SECONDS - start)) s)"
            return 0
        fi
        sleep 0.2
    done
    fail "$desc (not within $WAIT_S s)" "$("$@" 2>&1)"
    return 1
}
content_is() { [ "$(cat "$1" 2>&1)" == "$2" ]; }
lists() { local d=$1; shift; local l n; l=$(ls -a "$d") || return 1; for n; do grep -qxF -- "$n" <<<"$l" || return 1; done; }
lists_not() { local l; l=$(ls -a "$1") || return 1; ! grep -qxF -- "$2" <<<"$l"; }
digest_of() { coffer status --digest "$1" 2>&1; }
same_digest() { local a b; a=$(digest_of "$L_MNT") && b=$(digest_of "$D_MNT") && [ "$a" == "$b" ]; }
csync() { check "coffer sync $(basename "$(dirname "$1")")" coffer sync "$1"; }

coffer_init || fatal "coffer init"

# ---------------------------------------------------------------- 1. by hand
log "both mounted, synced by hand"
mount_as laptop --no-auto-sync
mount_as desktop --no-auto-sync
mkdir -p "$L_MNT/docs" "$L_MNT/proj/sub"
printf 'base\n' >"$L_MNT/docs/note.txt"
printf 'in the folder\n' >"$L_MNT/proj/sub/f.txt"
csync "$L_MNT"
csync "$D_MNT"
assert_eq base "$(cat "$D_MNT/docs/note.txt" 2>&1)" "desktop sees the laptop's file after coffer sync"
assert_eq "" "$(coffer conflicts "$L_MNT" 2>&1)" "coffer conflicts: nothing before any conflict"

log "concurrent edits, neither device has seen the other's"
printf 'laptop edit\n' >"$L_MNT/docs/note.txt"
printf 'desktop edit, longer\n' >"$D_MNT/docs/note.txt"
mv "$L_MNT/proj" "$L_MNT/proj-renamed"
printf 'desktop edit inside\n' >>"$D_MNT/proj/sub/f.txt"
ls "$L_MNT/docs" "$D_MNT/docs" >/dev/null   # the kernel caches both listings
csync "$L_MNT"
csync "$D_MNT"
csync "$L_MNT"

cl=$(coffer conflicts "$L_MNT" 2>&1)
cd_=$(coffer conflicts "$D_MNT" 2>&1)
assert_match '^docs/note \(conflict (laptop|desktop) [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{6}\)\.txt$' "$cl" \
    "laptop: coffer conflicts lists one copy, named as issue 13 says"
assert_eq "$cl" "$cd_" "desktop: coffer conflicts lists the same copy"
copy=$(head -n 1 <<<"$cl")
check "laptop: the conflict copy is in the mounted folder" test -f "$L_MNT/$copy"
check "desktop: the conflict copy is in the mounted folder" test -f "$D_MNT/$copy"
check "laptop: the listing shows the copy (a listing cached before the merge)" lists "$L_MNT/docs" "$(basename "$copy")" note.txt
check "desktop: the listing shows the copy" lists "$D_MNT/docs" "$(basename "$copy")" note.txt
assert_file_eq "$L_MNT/$copy" "$D_MNT/$copy" "the conflict copy has the same bytes on both"
assert_file_eq "$L_MNT/docs/note.txt" "$D_MNT/docs/note.txt" "note.txt has the same bytes on both"
both=$(cat "$L_MNT/docs/note.txt" "$L_MNT/$copy" | sort)
assert_eq "$(printf 'desktop edit, longer\nlaptop edit')" "$both" "both edits survive: one in note.txt, one in the copy"
for m in "$L_MNT" "$D_MNT"; do
    assert_match '^conflict copies: +1$' "$(coffer status "$m" 2>&1)" "coffer status $(basename "$(dirname "$m")") counts 1 conflict copy"
done
assert_match '^device: +laptop \([0-9a-f]{32}\)$' "$(coffer status "$L_MNT" 2>&1)" "coffer status names the device"

for m in "$L_MNT" "$D_MNT"; do
    n=$(basename "$(dirname "$m")")
    assert_eq "$(printf 'in the folder\ndesktop edit inside')" "$(cat "$m/proj-renamed/sub/f.txt" 2>&1)" \
        "$n: the edit made inside the folder is in the renamed folder"
    check_fails "$n: the folder is gone from its old name" test -e "$m/proj"
done

dl=$(digest_of "$L_MNT")
assert_match '^[0-9a-f]{64}$' "$dl" "coffer status --digest prints one hex line"
assert_eq "$dl" "$(digest_of "$D_MNT")" "the two devices' digests are equal"
tree_digest "$L_MNT" >"$T/tree.l"
tree_digest "$D_MNT" >"$T/tree.d"
assert_file_eq "$T/tree.l" "$T/tree.d" "the two mounted folders hold the same tree"

devs=$(coffer devices "$L_MNT" 2>&1)
assert_match '^laptop +[0-9a-f]{32} +last segment [0-9]+ +last seen [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC +\(this device\)$' \
    "$devs" "coffer devices: the laptop, marked as this device"
assert_match '^desktop +[0-9a-f]{32} +last segment [0-9]+ +last seen ' "$devs" "coffer devices: the desktop"
assert_eq 2 "$(wc -l <<<"$devs")" "coffer devices: two lines"
check_fails "coffer devices: no device is silent" grep -q silent <<<"$devs"

log "the user resolves the conflict on the desktop"
rm "$D_MNT/$copy"
csync "$D_MNT"
csync "$L_MNT"
check "laptop: the copy is gone from the listing" lists_not "$L_MNT/docs" "$(basename "$copy")"
check_fails "laptop: the copy is gone" test -e "$L_MNT/$copy"
assert_eq "" "$(coffer conflicts "$L_MNT" 2>&1)" "laptop: coffer conflicts lists nothing"
assert_eq "" "$(coffer conflicts "$D_MNT" 2>&1)" "desktop: coffer conflicts lists nothing"
assert_match '^conflict copies: +0$' "$(coffer status "$L_MNT" 2>&1)" "laptop: coffer status counts no conflict copy"
check "the digests are equal again" same_digest
coffer_unmount "$L_MNT" >/dev/null || fail "unmount laptop"
coffer_unmount "$D_MNT" >/dev/null || fail "unmount desktop"

# ---------------------------------------------------------------- 2. auto-sync
log "both mounted, auto-sync every 2 s"
mount_as laptop -o sync_interval=2
mount_as desktop -o sync_interval=2
# What the laptop's kernel caches: the listing, the attributes and pages of note.txt.
ls -la "$L_MNT/docs" >/dev/null
cat "$L_MNT/docs/note.txt" >/dev/null
printf 'changed on the desktop, longer than before\n' >"$D_MNT/docs/note.txt"
printf 'new on the desktop\n' >"$D_MNT/docs/new.txt"
mkdir "$D_MNT/docs/newdir"
printf 'deep\n' >"$D_MNT/docs/newdir/deep.txt"
eventually "laptop: a cached listing shows the desktop's new file and folder" lists "$L_MNT/docs" new.txt newdir
eventually "laptop: a cached file shows the desktop's new content" \
    content_is "$L_MNT/docs/note.txt" "changed on the desktop, longer than before"
assert_eq "new on the desktop" "$(cat "$L_MNT/docs/new.txt" 2>&1)" "laptop: the new file's content"
assert_eq deep "$(cat "$L_MNT/docs/newdir/deep.txt" 2>&1)" "laptop: the file in the new folder"

ls -la "$D_MNT" "$D_MNT/proj-renamed" >/dev/null
mkdir "$L_MNT/from-laptop"
printf 'laptop file\n' >"$L_MNT/from-laptop/x.txt"
rm "$L_MNT/proj-renamed/sub/f.txt"
eventually "desktop: a cached listing shows the laptop's new folder" lists "$D_MNT" from-laptop
eventually "desktop: the laptop's file in it" content_is "$D_MNT/from-laptop/x.txt" "laptop file"
eventually "desktop: a cached listing drops the file the laptop deleted" lists_not "$D_MNT/proj-renamed/sub" f.txt
eventually "the digests settle equal" same_digest
tree_digest "$L_MNT" >"$T/tree.l2"
tree_digest "$D_MNT" >"$T/tree.d2"
assert_file_eq "$T/tree.l2" "$T/tree.d2" "the two mounted folders hold the same tree after auto-sync"
digest_mounted=$(digest_of "$L_MNT")
assert_fails_with "$EX_BUSY" "$COFFER" status --digest "$CLOUD" --state "$L_STATE" --password-file "$PW"
coffer_unmount "$L_MNT" >/dev/null || fail "unmount laptop"
coffer_unmount "$D_MNT" >/dev/null || fail "unmount desktop"

# ---------------------------------------------------------------- 3. unmounted
log "the vault folder, not mounted"
for n in laptop desktop; do
    st=$T/$n/state
    assert_eq "$digest_mounted" "$(coffer status --digest "$CLOUD" --state "$st" --password-file "$PW" 2>&1)" \
        "$n: coffer status --digest VAULT --state equals the mounted digest"
    out=$(coffer conflicts "$CLOUD" --state "$st" --password-file "$PW" 2>&1)
    rc=$?
    assert_eq "0:" "$rc:$out" "$n: coffer conflicts VAULT: exit 0, no output"
done
devs=$(coffer devices "$CLOUD" --state "$D_STATE" --password-file "$PW" 2>&1)
assert_match '^desktop .*\(this device\)$' "$devs" "coffer devices VAULT: the desktop is this device"
assert_match '^laptop ' "$devs" "coffer devices VAULT: the laptop"
assert_match '^conflict copies: +0$' "$(coffer status "$CLOUD" --state "$L_STATE" --password-file "$PW" 2>&1)" \
    "coffer status VAULT --state"
assert_fails_with "$EX_NOT_FOUND" "$COFFER" conflicts "$T/laptop"
assert_fails_with "$EX_USAGE" "$COFFER" devices
finish
