#!/usr/bin/env bash
# bench/run.sh [SYSTEM...] - the project's benchmark: the shared harness
# (../shared/bench/anchors.sh + fsbench.sh) over coffer and the filesystems
# people would otherwise pick, round-robin, REPS repetitions each, with the
# report (medians, ratios to native and gocryptfs) in bench/results/<date>/.
#
#   SYSTEM...      default: native gocryptfs securefs-lite coffer
#                  (plus passthrough_hp when $BENCH_ROOT/passthrough_hp exists)
# Environment:
#   COFFER         the coffer binary [../build/coffer, else ../build-d/coffer;
#                  built with .ci/run build if neither exists]
#   SHARED_BENCH   the shared harness [$(dirname $0)/../../shared/bench]
#   REPS           repetitions per system [5]
#   BENCH_ROOT     work folder on a real disk, not tmpfs [/tmp/bench]
#   OUTDIR         [bench/results/<YYYYmmdd-HHMMSS>]
#   SKIP_INSTALL=1 do not apt-get install missing tools
#   SKIP_EXTRA=1   skip bench/coffer-extra.sh (no-op sync, new-device mount, ...)
#   FSBENCH_*, MAX_WALL, QUIET_*, ...  passed through to the harness
#
# A quick smoke test of the script itself:
#   FSBENCH_SEQ_MB=64 FSBENCH_RAND_MB=16 REPS=1 SKIP_RAW=1 bench/run.sh native
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$HERE/../../shared/bench}
[ -x "$SHARED_BENCH/anchors.sh" ] || [ -f "$SHARED_BENCH/anchors.sh" ] ||
    { echo "no anchors.sh in SHARED_BENCH=$SHARED_BENCH" >&2; exit 2; }
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)

if [ $# -gt 0 ]; then
    SYSTEMS=("$@")
else
    SYSTEMS=(native gocryptfs securefs-lite coffer)
    [ -x "${BENCH_ROOT:-/tmp/bench}/passthrough_hp" ] && SYSTEMS=(native passthrough_hp gocryptfs securefs-lite coffer)
fi
export REPS=${REPS:-5}
export BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
export OUTDIR=${OUTDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}

want() { local s; for s in "${SYSTEMS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ------------------------------------------------------------------ tools
need_pkgs=()
for t in fio:fio jq:jq fusermount3:fuse3 mountpoint:util-linux timeout:coreutils python3:python3; do
    command -v "${t%%:*}" >/dev/null || need_pkgs+=("${t#*:}")
done
want gocryptfs && ! command -v gocryptfs >/dev/null && need_pkgs+=(gocryptfs)
want securefs-lite && ! command -v securefs >/dev/null && need_pkgs+=(securefs)
want securefs-full && ! command -v securefs >/dev/null && need_pkgs+=(securefs)
want cryfs && ! command -v cryfs >/dev/null && need_pkgs+=(cryfs)
want encfs && ! command -v encfs >/dev/null && need_pkgs+=(encfs)
want rclone-crypt && ! command -v rclone >/dev/null && need_pkgs+=(rclone)
[ -d /usr/include/boost ] || need_pkgs+=(libboost-dev)   # the untar workload's tree
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "${SKIP_INSTALL:-0}" = 1 ]; then
        echo "missing: ${need_pkgs[*]} (SKIP_INSTALL=1)" >&2; exit 2
    fi
    echo "installing from Debian: ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -q || true
    apt-get -o DPkg::Lock::Timeout=300 install -y -q "${need_pkgs[@]}" </dev/null
fi

# ------------------------------------------------------------------ coffer
if want coffer; then
    if [ -z "${COFFER:-}" ]; then
        for b in "$ROOT/build/coffer" "$ROOT/build-d/coffer"; do
            [ -x "$b" ] && { COFFER=$b; break; }
        done
    fi
    if [ -z "${COFFER:-}" ]; then
        echo "no built coffer: building with .ci/run build" >&2
        "$ROOT/.ci/run" build
        COFFER=$ROOT/build/coffer
    fi
    export COFFER=$(readlink -f "$COFFER")
fi

mkdir -p "$OUTDIR"
{
    echo "systems: ${SYSTEMS[*]}"
    echo "reps: $REPS"
    echo "coffer: ${COFFER:-n/a}"
    echo "coffer_commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
    echo "shared_bench: $SHARED_BENCH"
    echo "started: $(date -Is)"
    echo "command: $0 $*"
} >"$OUTDIR/run-info.txt"

echo "bench: ${SYSTEMS[*]}, REPS=$REPS, results in $OUTDIR" >&2
rc=0
"$SHARED_BENCH/anchors.sh" "${SYSTEMS[@]}" || rc=$?
if want coffer && [ "${SKIP_EXTRA:-0}" != 1 ]; then
    echo "coffer-specific workloads (bench/coffer-extra.sh)" >&2
    timeout 7200 "$HERE/coffer-extra.sh" "$OUTDIR" >"$OUTDIR/coffer-extra.out" 2>&1 || {
        echo "coffer-extra.sh failed (see $OUTDIR/coffer-extra.out)" >&2; rc=1; }
fi
echo "finished: $(date -Is) rc=$rc" >>"$OUTDIR/run-info.txt"
if [ -f "$OUTDIR/perf.md" ]; then
    echo "report: $OUTDIR/perf.md" >&2
    cat "$OUTDIR/perf.md"
fi
[ -f "$OUTDIR/coffer-extra.md" ] && cat "$OUTDIR/coffer-extra.md"
exit $rc
