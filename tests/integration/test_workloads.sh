#!/usr/bin/env bash
# Real programs on the mount, each compared with the same work on a plain
# directory: tar extraction + diff -r, git init/commit/gc/fsck, a SQLite
# database (rollback journal and WAL), fio random writes with crc32c
# verification, stress-ng filesystem stressors with --verify. Each step is
# bounded by `timeout`. Then the whole tree survives unmount, and a second
# device sees it after sync.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted
PLAIN=$T/plain
mkdir -p "$PLAIN"

# ---------------------------------------------------------------- tar
log "tar: extract a source tree"
if [ -d /usr/include/boost/asio ]; then
    tar -C /usr/include -cf "$T/src.tar" boost/asio boost/config boost/core
elif [ -d /usr/include/linux ]; then
    tar -C /usr/include -cf "$T/src.tar" linux
else
    tar -C /usr/share -cf "$T/src.tar" doc
fi
log "tarball: $(tar -tf "$T/src.tar" | wc -l) entries, $(du -h "$T/src.tar" | cut -f1)"
check "tar -x on a plain directory" timeout 300 tar -C "$PLAIN" -xf "$T/src.tar"
check "tar -x on the mount" timeout 300 tar -C "$MNT" -xf "$T/src.tar"
check "diff -r of the extracted trees" timeout 300 diff -r --no-dereference "$PLAIN/" "$MNT/"
check "tar -c from the mount equals the original listing" \
    bash -c "diff <(tar -tf '$T/src.tar' | grep -v '/\$' | sort) <(cd '$MNT' && timeout 300 tar -cf - boost linux doc 2>/dev/null | tar -tf - | grep -v '/\$' | sort)"
assert_eq "$(cd "$PLAIN" && find . | wc -l)" "$(cd "$MNT" && find . | wc -l)" "same number of entries"

# ---------------------------------------------------------------- git
log "git"
git_work() {  # DIR: a repository with a few commits, a branch, gc, fsck
    local d=$1
    export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
    export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
    (
        set -e
        mkdir -p "$d/repo" && cd "$d/repo"
        git init -q -b main .
        git config core.fsync all 2>/dev/null || true
        cp -r "$PLAIN/boost" . 2>/dev/null || cp -r "$PLAIN"/* .
        git add -A
        git commit -q -m "import"
        git checkout -q -b topic
        for i in 1 2 3; do echo "change $i" >>README; git add README; git commit -q -m "change $i"; done
        git checkout -q main
        git merge -q --no-edit topic
        git mv README README.md
        git commit -q -m rename
        git gc -q --aggressive
        git fsck --full --strict
        git rev-parse HEAD
    )
}
head_plain=$(timeout 300 bash -c "$(declare -f git_work); PLAIN='$PLAIN'; git_work '$PLAIN'" 2>&1 | tail -n 1)
head_mnt=$(timeout 300 bash -c "$(declare -f git_work); PLAIN='$PLAIN'; git_work '$MNT'" 2>&1 | tail -n 1)
assert_match '^[0-9a-f]{40}$' "$head_mnt" "git init/add/commit/merge/gc/fsck --full inside the mount"
assert_eq "$head_plain" "$head_mnt" "the same commit id as on the plain directory"
check "git status is clean in the mount" bash -c "cd '$MNT/repo' && test -z \"\$(git status --porcelain)\""
check "git fsck again" bash -c "cd '$MNT/repo' && timeout 120 git fsck --full --no-progress"
check "git clone from the mount into the mount" timeout 120 git clone -q "$MNT/repo" "$MNT/clone"
check "git log of the clone" bash -c "cd '$MNT/clone' && test \"\$(git rev-parse HEAD)\" = '$head_mnt'"

# ---------------------------------------------------------------- sqlite
log "sqlite3"
sql_work() {  # DB JOURNAL_MODE
    timeout 300 sqlite3 "$1" <<SQL
PRAGMA journal_mode=$2;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, blob BLOB);
CREATE INDEX t_name ON t(name);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000)
INSERT INTO t(id, name, v, blob) SELECT i, 'name-' || (i * 7919 % 10007), i * 0.5, zeroblob(i % 300) FROM c;
COMMIT;
UPDATE t SET v = v * 2 WHERE id % 3 = 0;
DELETE FROM t WHERE id % 11 = 0;
INSERT INTO t(name, v) SELECT name || '-copy', v FROM t WHERE id < 500;
VACUUM;
SELECT count(*), sum(v), sum(length(blob)), min(name), max(name) FROM t;
SELECT name FROM t WHERE name LIKE 'name-12%' ORDER BY name LIMIT 3;
PRAGMA integrity_check;
SQL
}
for mode in delete wal; do
    out_plain=$(sql_work "$PLAIN/db-$mode.sqlite" $mode 2>&1)
    out_mnt=$(sql_work "$MNT/db-$mode.sqlite" $mode 2>&1)
    assert_match '^ok$' "$out_mnt" "sqlite ($mode journal): PRAGMA integrity_check ok in the mount"
    assert_eq "$out_plain" "$out_mnt" "sqlite ($mode journal): same query results as on a plain directory"
    assert_eq "$(sqlite3 "$PLAIN/db-$mode.sqlite" .dump | sha256sum)" "$(timeout 120 sqlite3 "$MNT/db-$mode.sqlite" .dump | sha256sum)" \
        "sqlite ($mode journal): same .dump"
done

# ---------------------------------------------------------------- fio
log "fio randwrite --verify=crc32c"
fio_job() {
    timeout 300 fio --name=v --rw=randwrite --bs=4k --size=32m --verify=crc32c --do_verify=1 \
        --directory="$1" --ioengine=psync --fsync=64 --verify_state_save=0 --output-format=terse 2>&1
}
out=$(fio_job "$MNT"); rc=$?
assert_eq 0 "$rc" "fio 4k randwrite 32 MiB with crc32c verify on the mount (${out:0:200})"
out=$(timeout 300 fio --name=m --rw=randrw --bs=16k --size=16m --verify=crc32c --do_verify=1 \
    --directory="$MNT" --ioengine=mmap --verify_state_save=0 --output-format=terse 2>&1); rc=$?
assert_eq 0 "$rc" "fio mmap randrw with crc32c verify (${out:0:200})"
out=$(timeout 300 fio --name=a --rw=write --bs=1m --size=64m --numjobs=2 --verify=crc32c --do_verify=1 \
    --directory="$MNT" --ioengine=psync --end_fsync=1 --verify_state_save=0 --output-format=terse 2>&1); rc=$?
assert_eq 0 "$rc" "fio 2 jobs sequential 64 MiB with verify (${out:0:200})"

# ---------------------------------------------------------------- stress-ng
log "stress-ng --verify"
# COFFER_STRESSNG_SECONDS: seconds per stressor group (default 15; the hdd
# group runs a third longer). The sanitized CI run uses fewer.
SNG=${COFFER_STRESSNG_SECONDS:-15}
SNG_HDD=$((SNG * 4 / 3))
mkdir -p "$MNT/stress" "$PLAIN/stress"
out=$(timeout 120 stress-ng --hdd 2 --hdd-opts wr-rnd,rd-rnd --hdd-bytes 32m --verify --timeout ${SNG_HDD}s \
    --temp-path "$MNT/stress" --metrics-brief 2>&1); rc=$?
assert_eq 0 "$rc" "stress-ng --hdd wr-rnd,rd-rnd --verify (${SNG_HDD} s)"
[ "$rc" -ne 0 ] && printf '%s\n' "$out" | tail -n 20
out=$(timeout 120 stress-ng --dir 1 --dentry 1 --rename 1 --link 1 --symlink 1 --verify --timeout ${SNG}s \
    --temp-path "$MNT/stress" --metrics-brief 2>&1); rc=$?
assert_eq 0 "$rc" "stress-ng --dir/--dentry/--rename/--link/--symlink --verify (${SNG} s)"
[ "$rc" -ne 0 ] && printf '%s\n' "$out" | tail -n 20
out=$(timeout 120 stress-ng --fallocate 1 --seek 1 --readahead 1 --verify --timeout ${SNG}s \
    --temp-path "$MNT/stress" --metrics-brief 2>&1); rc=$?
assert_eq 0 "$rc" "stress-ng --fallocate/--seek/--readahead --verify (${SNG} s)"
[ "$rc" -ne 0 ] && printf '%s\n' "$out" | tail -n 20
check "stress-ng left its temp files cleaned" test -z "$(find "$MNT/stress" -mindepth 1 2>/dev/null | head -n 1)"

# ---------------------------------------------------------------- persistence
log "unmount, sync, second device"
tree_digest "$MNT" >"$T/digest.1" 2>&1
coffer_unmount || fail "coffer unmount exit $?"
STATE=$T/state-device2
coffer_mount || fatal "second device mount"
tree_digest "$MNT" >"$T/digest.2" 2>&1
assert_file_eq "$T/digest.1" "$T/digest.2" "the whole workload tree (git, sqlite, fio files) on a second device"
check "git fsck on the second device" bash -c "cd '$MNT/repo' && timeout 120 git fsck --full --no-progress"
assert_match '^ok$' "$(timeout 60 sqlite3 "$MNT/db-wal.sqlite" 'PRAGMA integrity_check;' 2>&1)" "sqlite integrity_check on the second device"
coffer_unmount || fail "second device unmount exit $?"
check "fsck after the workloads" coffer fsck "$CLOUD" --password-file "$PW"

finish
