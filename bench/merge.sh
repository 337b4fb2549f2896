#!/usr/bin/env bash
# bench/merge.sh [N] - what merging another device's changes costs (issue 13):
#   merge    device A creates N empty files in N/100 folders through its
#            mount and publishes them as one segment; device B (a fresh
#            local state) merges it: `coffer sync VAULT --state B`, timed;
#            ops/s = the segment's operations / that time.
#   again    A changes N/10 of them (chmod) and publishes; B merges that
#            increment: the time must follow the increment, not the vault.
#   noop     `coffer sync` on B's mount with nothing new (median of 5).
#   latency  A and B both mounted with the auto-sync defaults (or
#            SYNC_INTERVAL); A creates LAT_FILES files; seconds until B's
#            mounted folder lists them all.
# Environment: COFFER (binary, default build/coffer), OUT (report file),
# LAT_FILES (default 1000), SYNC_INTERVAL (default: coffer's own, 30 s).
set -euo pipefail
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COFFER=${COFFER:-$ROOT/build/coffer}
LAT_FILES=${LAT_FILES:-1000}
T=$(mktemp -d /tmp/coffer-merge-bench.XXXXXX)
OUT=${OUT:-$T/report.txt}
MOUNTS=()
cleanup() {
    for m in "${MOUNTS[@]}"; do timeout 120 "$COFFER" unmount "$m" >/dev/null 2>&1 || fusermount3 -uz "$m" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
say() { printf '%s\n' "$*" | tee -a "$OUT"; }
mkdir -p "$T"/{cloud,ma,mb,sa,sb,sb2}
printf 'bench password\n' >"$T/pw"
"$COFFER" init "$T/cloud" --insecure-fast-kdf --password-file "$T/pw" --recovery-key-file "$T/rk" >/dev/null
"$COFFER" mount "$T/cloud" "$T/ma" --state "$T/sa" --password-file "$T/pw" --device-name A --no-auto-sync 2>/dev/null
MOUNTS+=("$T/ma")

say "merge benchmark, N=$N, $(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 - "$T/ma" "$N" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(max(1, n // 100)):
    os.mkdir(f"{root}/d{d}")
for i in range(n):
    os.close(os.open(f"{root}/d{i % max(1, n // 100)}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
EOF
out=$("$COFFER" sync "$T/ma")
ops=$(sed -n 's/.*published \([0-9]*\) operation.*/\1/p' <<<"$out")
say "A published: $out"

t0=$(now)
"$COFFER" sync "$T/cloud" --state "$T/sb" --password-file "$T/pw" --device-name B >/dev/null
t1=$(now)
secs=$(python3 -c "print(f'{$t1-$t0:.3f}')")
say "merge: B applied ${ops} operations in ${secs} s: $(python3 -c "print(int($ops/($t1-$t0)))") ops/s (includes unlocking and opening)"

python3 - "$T/ma" "$N" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 10):
    os.chmod(f"{root}/d{i % max(1, n // 100)}/f{i}", 0o600)
EOF
out=$("$COFFER" sync "$T/ma")
ops2=$(sed -n 's/.*published \([0-9]*\) operation.*/\1/p' <<<"$out")
t0=$(now)
"$COFFER" sync "$T/cloud" --state "$T/sb" --password-file "$T/pw" >/dev/null
t1=$(now)
say "again: B applied ${ops2} more operations in $(python3 -c "print(f'{$t1-$t0:.3f}')") s"

"$COFFER" mount "$T/cloud" "$T/mb" --state "$T/sb" --password-file "$T/pw" 2>/dev/null
MOUNTS+=("$T/mb")
samples=()
for _ in 1 2 3 4 5; do
    t0=$(now); "$COFFER" sync "$T/mb" >/dev/null; t1=$(now)
    samples+=("$(python3 -c "print(f'{($t1-$t0)*1000:.1f}')")")
done
say "noop: coffer sync on B's mount with nothing new: $(printf '%s\n' "${samples[@]}" | sort -n | sed -n 3p) ms (median of 5; ${samples[*]})"
timeout 120 "$COFFER" unmount "$T/mb" >/dev/null; MOUNTS=("$T/ma")
timeout 120 "$COFFER" unmount "$T/ma" >/dev/null; MOUNTS=()

# latency, on a fresh pair of mounts with the auto-sync defaults
opt=()
[ -n "${SYNC_INTERVAL:-}" ] && opt=(-o "sync_interval=$SYNC_INTERVAL")
"$COFFER" mount "$T/cloud" "$T/ma" --state "$T/sa" --password-file "$T/pw" "${opt[@]}"
MOUNTS+=("$T/ma")
"$COFFER" mount "$T/cloud" "$T/mb" --state "$T/sb" --password-file "$T/pw" "${opt[@]}"
MOUNTS+=("$T/mb")
ls "$T/mb" >/dev/null
t0=$(now)
mkdir "$T/ma/latency"
python3 - "$T/ma/latency" "$LAT_FILES" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    with open(f"{sys.argv[1]}/f{i}", "w") as f: f.write(f"file {i}\n")
EOF
t_written=$(now)
seen=0
deadline=$(( $(date +%s) + 600 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    seen=$( (ls "$T/mb/latency" 2>/dev/null || true) | wc -l)
    [ "$seen" -ge "$LAT_FILES" ] && break
    sleep 0.5
done
t1=$(now)
say "latency: $LAT_FILES files written on A in $(python3 -c "print(f'{$t_written-$t0:.1f}')") s; all visible in B's mounted folder $(python3 -c "print(f'{$t1-$t_written:.1f}')") s after the last write (interval ${SYNC_INTERVAL:-30} s; seen $seen)"
echo "report: $OUT"
