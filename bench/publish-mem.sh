#!/usr/bin/env bash
# bench/publish-mem.sh - the daemon's memory around one big publish (issue 4,
# the peak-RSS target): untar the Boost headers into a fresh mount, read the
# daemon's VmHWM/VmRSS, time `coffer sync`, read them again.
#
#   bench/publish-mem.sh [REPS]            one line per rep, then the medians
#
# Environment: COFFER (binary) [build/coffer], BENCH_ROOT [/tmp/bench] (a real
# disk), FSBENCH_TARBALL [$BENCH_ROOT/boost.tar, built from /usr/include/boost],
# MALLOC_ARENA_MAX etc. pass through to the daemon.
# Columns (memory in MiB): ops pending before the sync; VmHWM and VmRSS after
# the untar; the daemon's threads then (the FUSE workers); wall and CPU
# seconds (the daemon's user + system) of the sync; hwm_pub the daemon's
# peak over the whole run, rss_pub its RSS after the sync, pub_peak the peak
# during the sync alone (VmHWM reset through /proc/PID/clear_refs first);
# seg_kib the size of the segment written.
# Uses --insecure-fast-kdf: the hashing memory would be unmapped after the
# unlock anyway, and VmHWM is read before and after the publish.
# About 30 s per rep on a quiet 2-core machine.
set -euo pipefail
export LC_ALL=C
REPS=${1:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
COFFER=${COFFER:-$HERE/build/coffer}
BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
TARBALL=${FSBENCH_TARBALL:-$BENCH_ROOT/boost.tar}
RUN=$(mktemp -d "$BENCH_ROOT/publish-mem.XXXXXX" 2>/dev/null || { mkdir -p "$BENCH_ROOT"; mktemp -d "$BENCH_ROOT/publish-mem.XXXXXX"; })
[ -x "$COFFER" ] || { echo "no coffer binary at $COFFER (set COFFER)" >&2; exit 2; }
if [ ! -s "$TARBALL" ]; then
    mkdir -p "$(dirname "$TARBALL")"
    tar -C /usr/include -cf "$TARBALL.tmp" boost && mv "$TARBALL.tmp" "$TARBALL"
fi
PW=$RUN/pw
printf 'bench password\n' >"$PW"
M=$RUN/mnt
cleanup() {
    if awk -v m="$M" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
        timeout 300 "$COFFER" unmount "$M" >/dev/null 2>&1 || fusermount3 -u -z "$M" 2>/dev/null || true
    fi
    rm -rf "$RUN"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
# CPU seconds (user + system) the daemon has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$2/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

printf '%-4s %8s %9s %9s %9s %7s %9s %7s %9s %8s %8s %8s\n' rep ops untar_s hwm_untar rss_untar threads publish_s cpu_s hwm_pub rss_pub pub_peak seg_kib
rows=()
for rep in $(seq 1 "$REPS"); do
    V=$RUN/vault S=$RUN/state
    rm -rf "$V" "$S"; mkdir -p "$V" "$M"
    timeout 120 "$COFFER" init "$V" --insecure-fast-kdf --password-file "$PW" --recovery-key-file "$RUN/rk" \
        </dev/null >/dev/null
    rm -f "$RUN/rk"
    timeout 120 "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$S" </dev/null
    pid=$(tr -dc 0-9 <"$S/daemon.pid")
    t=$(now); timeout 1200 tar -C "$M" -xf "$TARBALL"; untar=$(since "$t")
    ops=$(timeout 60 "$COFFER" status "$M" | awk -F'[: ]+' '/pending/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit } }')
    h0=$(kib VmHWM "$pid"); r0=$(kib VmRSS "$pid")
    threads=$(ls "/proc/$pid/task" | wc -l)
    # From here VmHWM counts the publish alone (5: reset the peak to the current RSS).
    echo 5 >"/proc/$pid/clear_refs"
    c0=$(cpu "$pid")
    t=$(now); timeout 1200 "$COFFER" sync "$M" >/dev/null; publish=$(since "$t")
    pcpu=$(awk -v a="$(cpu "$pid")" -v b="$c0" 'BEGIN { printf "%.2f", a - b }')
    p1=$(kib VmHWM "$pid"); r1=$(kib VmRSS "$pid")
    h1=$p1; [ "$h1" -ge "$h0" ] || h1=$h0  # the daemon's peak over the whole run
    seg=$(find "$V/journal" -type f -printf '%s\n' | sort -n | tail -1)
    timeout 600 "$COFFER" unmount "$M" >/dev/null
    printf '%-4s %8s %9s %9s %9s %7s %9s %7s %9s %8s %8s %8s\n' "$rep" "${ops:-?}" "$untar" "$(mib "$h0")" "$(mib "$r0")" \
        "$threads" "$publish" "$pcpu" "$(mib "$h1")" "$(mib "$r1")" "$(mib "$p1")" "$((seg / 1024))"
    rows+=("$untar $h0 $r0 $publish $h1 $r1 $p1 $pcpu")
done
printf '%s\n' "${rows[@]}" | awk '
    { for (i = 1; i <= NF; i++) v[i, NR] = $i }
    END {
        split("untar_s hwm_untar_mib rss_untar_mib publish_s hwm_publish_mib rss_publish_mib publish_peak_mib publish_cpu_s", name, " ")
        printf "median of %d:", NR
        for (i = 1; i <= 8; i++) {
            n = 0; delete a
            for (r = 1; r <= NR; r++) a[++n] = v[i, r]
            for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
            m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            secs = (i == 1 || i == 4 || i == 8)
            if (!secs) m = m / 1024
            printf " %s=%.*f", name[i], secs ? 3 : 1, m
        }
        printf "\n"
    }'
