#!/usr/bin/env bash
# bench/blocksize.sh - the object block size chosen by measurement (issue 4
# part 4): for each block size, a vault is made with `coffer init
# --block-size`, a 256 MiB file of random bytes is written and published, the
# vault is remounted (reads then come from the published objects, not the
# staging log) and, after dropping caches, read with fio 4 KiB random reads
# and with dd sequentially. Round-robin over the sizes, REPS times; prints a
# Markdown table of medians.
#
#   COFFER      the coffer binary [build/coffer]
#   SIZES       block sizes in bytes [4096 16384 65536]
#   REPS        repetitions [3]
#   MB          file size in MiB [256]
#   BENCH_ROOT  work folder on a real disk [/tmp/bench]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
COFFER=$(readlink -f "${COFFER:-$HERE/../build/coffer}")
SIZES=${SIZES:-4096 16384 65536}
REPS=${REPS:-3}
MB=${MB:-256}
BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
for t in fio jq; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
source "$HERE/sweep-lib.sh"
sweep_setup blocksize
head -c $((MB << 20)) /dev/urandom >"$W/data"
for rep in $(seq "$REPS"); do
    for bs in $SIZES; do
        sweep_init --block-size "$bs"
        sweep_mount
        cp "$W/data" "$MNT/file"
        t0=$EPOCHREALTIME; timeout 300 "$COFFER" sync "$MNT" >/dev/null; publish=$(since "$t0")
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        sweep_mount
        drop
        timeout 60 fio --name=rr --filename="$MNT/file" --rw=randread --bs=4k --ioengine=psync --iodepth=1 \
            --runtime=10 --size="${MB}m" --invalidate=1 --output-format=json --output="$W/fio.json" >/dev/null
        iops=$(jq '.jobs[0].read.iops | floor' "$W/fio.json")
        drop
        t0=$EPOCHREALTIME; dd if="$MNT/file" of=/dev/null bs=1M status=none; seq=$(since "$t0")
        cmp -s "$W/data" "$MNT/file" || { echo "block size $bs: the file read back differs" >&2; exit 1; }
        vault_kib=$(du -sk "$W/vault" | cut -f1)
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        echo "$bs $rep $publish $iops $seq $vault_kib" | tee -a "$W/results" >&2
    done
done
echo "| block size | publish ${MB} MiB (s) | 4 KiB random read, cold (IOPS) | sequential read, cold (s) | vault size (KiB) |"
echo "|---|---|---|---|---|"
for bs in $SIZES; do
    median_row "$bs" "$((bs / 1024)) KiB" '| {label} | {0:.2f} | {1:.0f} | {2:.2f} | {3:.0f} |'
done
