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
source "$HERE/sweep-lib.sh"
sweep_setup extentsize
head -c $((MB << 20)) /dev/urandom >"$W/data"
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
for rep in $(seq "$REPS"); do
    for es in $SIZES; do
        sweep_init --extent-size "$es"
        sweep_mount
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
        sweep_mount
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
    median_row "$es" "$((es >> 20)) MiB" '| {label} | {0:.2f} | {1:.0f} | {2:.2f} | {3:.0f} | {4:.2f} |'
done
