#!/usr/bin/env bash
# bench/extentsize.sh - the extent size chosen by measurement (issue 4
# part 4). The extent is the part of a file sealed again when any byte of it
# changes. For each size a vault is made with `coffer init --extent-size`; a
# file of random bytes is written and published (a new big file), then
# CHANGES scattered 4 KiB writes change it and it is published again (what a
# database or a VM image does; the vault grows by the extents re-sealed), the
# vault is remounted and the file read cold. Round-robin over the sizes, REPS
# times; prints a Markdown table of medians.
#
#   COFFER      the coffer binary [build/coffer]
#   SIZES       extent sizes in bytes [1048576 4194304 16777216]
#   REPS        repetitions [3]
#   MB          file size in MiB [256]
#   CHANGES     scattered 4 KiB writes before the second publish [64]
#   BENCH_ROOT  work folder on a real disk [/tmp/bench]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
COFFER=$(readlink -f "${COFFER:-$HERE/../build/coffer}")
SIZES=${SIZES:-1048576 4194304 16777216}
REPS=${REPS:-3}
MB=${MB:-256}
CHANGES=${CHANGES:-64}
BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
[ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, FUSE)" >&2; exit 2; }
mkdir -p "$BENCH_ROOT"
W=$(mktemp -d "$BENCH_ROOT/extentsize.XXXXXX")
MNT=$W/mnt
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && { timeout 60 "$COFFER" unmount "$MNT" >/dev/null 2>&1 || fusermount3 -u -z "$MNT"; }
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$MNT"
echo "benchmark password" >"$W/pw"
head -c $((MB << 20)) /dev/urandom >"$W/data"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
mount_it() { timeout 60 "$COFFER" mount "$W/vault" "$MNT" --password-file "$W/pw" --state "$W/state" >/dev/null; }
since() { echo "$EPOCHREALTIME - $1" | bc; }
# The same scattered 4 KiB writes for every size: offsets from a fixed seed.
change() {  # change FILE
    python3 - "$1" "$CHANGES" "$MB" <<'PY'
import os, random, sys
path, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(4)
fd = os.open(path, os.O_WRONLY)
for _ in range(n):
    os.pwrite(fd, rng.randbytes(4096), rng.randrange(0, (mb << 20) - 4096) // 4096 * 4096)
os.fsync(fd)
os.close(fd)
PY
}
: >"$W/results"
for rep in $(seq "$REPS"); do
    for es in $SIZES; do
        rm -rf "$W/vault" "$W/state" "$W/rk"
        timeout 60 "$COFFER" init "$W/vault" --password-file "$W/pw" --recovery-key-file "$W/rk" \
            --insecure-fast-kdf --extent-size "$es" >/dev/null
        mount_it
        cp "$W/data" "$MNT/file"
        t0=$EPOCHREALTIME; timeout 300 "$COFFER" sync "$MNT" >/dev/null; publish=$(since "$t0")
        files=$(find "$W/vault" -type f | wc -l)
        before=$(du -sk "$W/vault" | cut -f1)
        cp "$W/data" "$W/changed"
        change "$W/changed"
        change "$MNT/file"
        t0=$EPOCHREALTIME; timeout 300 "$COFFER" sync "$MNT" >/dev/null; republish=$(since "$t0")
        grown=$(( $(du -sk "$W/vault" | cut -f1) - before ))
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        mount_it
        drop
        t0=$EPOCHREALTIME; dd if="$MNT/file" of=/dev/null bs=1M status=none; seq=$(since "$t0")
        cmp -s "$W/changed" "$MNT/file" || { echo "extent size $es: the file read back differs" >&2; exit 1; }
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        echo "$es $rep $publish $files $republish $grown $seq" | tee -a "$W/results" >&2
    done
done
echo "| extent size | publish ${MB} MiB (s) | vault files | publish after ${CHANGES} scattered 4 KiB writes (s) | vault grows by (KiB) | sequential read, cold (s) |"
echo "|---|---|---|---|---|---|"
for es in $SIZES; do
    awk -v es="$es" '$1 == es' "$W/results" | python3 -c '
import sys, statistics as st
rows = [l.split() for l in sys.stdin]
med = lambda i: st.median(float(r[i]) for r in rows)
print(f"| {int(rows[0][0]) // 1048576} MiB | {med(2):.2f} | {med(3):.0f} | {med(4):.2f} | {med(5):.0f} | {med(6):.2f} |")'
done
