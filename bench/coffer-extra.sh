#!/usr/bin/env bash
# bench/coffer-extra.sh OUTDIR - the coffer-specific workloads of the
# performance issue that the shared harness does not time:
#   untar      tar -xf of the Boost headers tarball into a fresh mount
#   publish    the first `coffer sync` after the untar
#   sync_noop  `coffer sync` with nothing to do
#   unmount    `coffer unmount` (nothing left to publish)
#   newdev     `coffer mount` with a fresh --state (rebuilds the index from the vault)
#   newdev_lsR `ls -lR` on that new device, cold
#   remount    `coffer mount` with the existing state
# plus the vault's size and file count and the state's size. One JSON line
# per rep in OUTDIR/coffer-extra.jsonl, a table in OUTDIR/coffer-extra.md.
#
# Environment: COFFER (binary), REPS [5], BENCH_ROOT [/tmp/bench],
# FSBENCH_TARBALL [$BENCH_ROOT/boost.tar, built from /usr/include/boost].
set -euo pipefail
export LC_ALL=C
OUTDIR=${1:?usage: coffer-extra.sh OUTDIR}
COFFER=${COFFER:?set COFFER to the coffer binary}
REPS=${REPS:-5}
BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
TARBALL=${FSBENCH_TARBALL:-$BENCH_ROOT/boost.tar}
RUN=$BENCH_ROOT/coffer-extra
mkdir -p "$OUTDIR" "$RUN"
if [ ! -s "$TARBALL" ]; then
    tar -C /usr/include -cf "$TARBALL" boost
fi
PW=$RUN/pw
printf 'bench password\n' >"$PW"

MOUNTED=()
cleanup() {
    local m
    for m in "${MOUNTED[@]:-}"; do
        [ -n "$m" ] || continue
        if awk -v m="$m" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
            timeout 120 "$COFFER" unmount "$m" >/dev/null 2>&1 || fusermount3 -u -z "$m" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

: >"$OUTDIR/coffer-extra.jsonl"
for rep in $(seq 1 "$REPS"); do
    V=$RUN/vault M=$RUN/mnt S1=$RUN/state1 S2=$RUN/state2
    rm -rf "$V" "$S1" "$S2"; mkdir -p "$V" "$M"
    MOUNTED=("$M")
    # the real (calibrated) KDF, as a user would have it
    timeout 300 "$COFFER" init "$V" --password-file "$PW" --recovery-key-file "$RUN/rk.$rep" </dev/null >/dev/null
    rm -f "$RUN/rk.$rep"
    t=$(now); timeout 300 "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$S1" </dev/null; mount1=$(since "$t")
    drop
    t=$(now); timeout 1200 tar -C "$M" -xf "$TARBALL"; untar=$(since "$t")
    t=$(now); timeout 1200 "$COFFER" sync "$M" >/dev/null; publish=$(since "$t")
    t=$(now); timeout 600 "$COFFER" sync "$M" >/dev/null; noop=$(since "$t")
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$(tr -dc 0-9 <"$S1/daemon.pid")/status" 2>/dev/null || echo null)
    t=$(now); timeout 600 "$COFFER" unmount "$M" >/dev/null; unmount=$(since "$t")
    vault_mb=$(du -sm "$V" | cut -f1); vault_files=$(find "$V" -type f | wc -l)
    state_mb=$(du -sm "$S1" | cut -f1)
    drop
    t=$(now); timeout 1200 "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$S2" </dev/null 2>/dev/null; newdev=$(since "$t")
    drop
    t=$(now); timeout 1200 ls -lR "$M" >/dev/null; lsr=$(since "$t")
    timeout 600 "$COFFER" unmount "$M" >/dev/null
    t=$(now); timeout 300 "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$S2" </dev/null; remount=$(since "$t")
    timeout 600 "$COFFER" unmount "$M" >/dev/null
    line=$(printf '{"system":"coffer","rep":%d,"mount_s":%s,"untar_s":%s,"publish_s":%s,"sync_noop_s":%s,"unmount_s":%s,"newdev_mount_s":%s,"newdev_lsR_s":%s,"remount_s":%s,"rss_peak_kib":%s,"vault_mb":%s,"vault_files":%s,"state_mb":%s}' \
        "$rep" "$mount1" "$untar" "$publish" "$noop" "$unmount" "$newdev" "$lsr" "$remount" "${rss:-null}" "$vault_mb" "$vault_files" "$state_mb")
    echo "$line" | tee -a "$OUTDIR/coffer-extra.jsonl"
    rm -rf "$V" "$S1" "$S2"
done

python3 - "$OUTDIR/coffer-extra.jsonl" >"$OUTDIR/coffer-extra.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["mount_s", "untar_s", "publish_s", "sync_noop_s", "unmount_s", "newdev_mount_s",
        "newdev_lsR_s", "remount_s", "rss_peak_kib", "vault_mb", "vault_files", "state_mb"]
print("# coffer-specific workloads (Boost headers tarball)\n")
print("| metric | median | min | max | reps |\n|---|---|---|---|---|")
for k in keys:
    v = [r[k] for r in rows if r.get(k) is not None]
    if v:
        print(f"| {k} | {statistics.median(v):g} | {min(v):g} | {max(v):g} | {len(v)} |")
PY
cat "$OUTDIR/coffer-extra.md"
