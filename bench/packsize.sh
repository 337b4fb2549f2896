#!/usr/bin/env bash
# bench/packsize.sh - the pack size chosen by measurement (issue 4 part 4).
# Chunks under 1 MiB share pack objects, which publish fills to a target
# size (COFFER_PACK_TARGET_MB, a build setting: a reader takes packs of any
# size). For each target, coffer is built from `git archive HEAD` with that
# setting; then, round-robin REPS times: the Boost headers tarball is
# extracted into a new vault and published (time, vault files and size),
# and a new device mounts the vault and reads every file cold (reads come
# from the packs). Prints a Markdown table of medians.
#
#   TARGETS     pack targets in MiB [2 8 32]
#   REPS        repetitions [3]
#   TARBALL     [/tmp/bench/boost.tar, made from /usr/include/boost if absent]
#   BENCH_ROOT  work folder on a real disk [/tmp/bench]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGETS=${TARGETS:-2 8 32}
REPS=${REPS:-3}
BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
TARBALL=${TARBALL:-$BENCH_ROOT/boost.tar}
COFFER=
source "$HERE/sweep-lib.sh"
sweep_setup packsize
[ -f "$TARBALL" ] || tar -cf "$TARBALL" -C /usr/include boost
mkdir -p "$W/src"
(cd "$ROOT" && git archive HEAD) | tar -x -C "$W/src"
for mb in $TARGETS; do
    echo "building coffer with $mb MiB packs" >&2
    cmake -S "$W/src" -B "$W/build-$mb" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_TESTS=OFF \
        -DCOFFER_PACK_TARGET_MB="$mb" >/dev/null
    ninja -C "$W/build-$mb" coffer >/dev/null
done
for rep in $(seq "$REPS"); do
    for mb in $TARGETS; do
        COFFER=$W/build-$mb/coffer
        sweep_init
        sweep_mount
        tar -xf "$TARBALL" -C "$MNT"
        t0=$EPOCHREALTIME; timeout 600 "$COFFER" sync "$MNT" >/dev/null; publish=$(since "$t0")
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        files=$(find "$W/vault" -type f | wc -l)
        vault_kib=$(du -sk "$W/vault" | cut -f1)
        sweep_mount "$W/state2"
        drop
        t0=$EPOCHREALTIME; tar -cf - -C "$MNT" . | wc -c >/dev/null; readall=$(since "$t0")
        timeout 120 "$COFFER" unmount "$MNT" >/dev/null
        echo "$mb $rep $publish $files $vault_kib $readall" | tee -a "$W/results" >&2
    done
done
echo "| pack target | publish after the untar (s) | vault files | vault size (KiB) | new device: read every file, cold (s) |"
echo "|---|---|---|---|---|"
for mb in $TARGETS; do
    median_row "$mb" "$mb MiB" '| {label} | {0:.2f} | {1:.0f} | {2:.0f} | {3:.2f} |'
done
