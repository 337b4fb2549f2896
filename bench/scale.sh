#!/usr/bin/env bash
# bench/scale.sh N [N...] - the scale benchmark of issue 4: a vault of N small
# files in N/10 directories, plus one directory of BIG empty files, written
# through a coffer mount, and what it costs to publish, mount, list and
# replay it.
#
# For each N (files in the tree; e.g. 10000 100000 1000000):
#   layout   ROOT/tree/tNNN/sNNN/fK: N/10 leaf directories of 10 files each
#            under ceil(sqrt(N/10)) top directories; contents 0-2048 bytes,
#            pseudo-random and deterministic from SEED and the file number;
#            ROOT/big/eNNNNNN: BIG empty files (default 100 000, at every N).
#   gen      the tree, then big/, written by WRITERS parallel processes of a C
#            helper compiled here (open/write/close, mkdir) through the mount
#   publish  `coffer sync MP` (operations, objects, vault bytes and files,
#            daemon VmHWM and CPU seconds)
#   remount  `coffer unmount`, drop caches, `coffer mount` with the same
#            --state until `stat MP/tree` answers
#   idle     daemon VmRSS after SETTLE seconds
#   ls       `ls -f MP/big | wc -l` and `ls -l MP/big | wc -l`, cold (caches
#            dropped) and warm
#   find     `find MP | wc -l`, cold and warm; VmRSS sampled every 0.1 s
#   noop     `coffer sync MP` with nothing to publish (median of 3)
#   index    the state folder's index.db* bytes (mounted, and after unmount)
#   newdev   `coffer mount` with a fresh --state (index rebuilt from the
#            vault), cold; its VmHWM and idle VmRSS; `find | wc -l` there
#   verify   every STRIDE-th file read back on the new device and compared
# Checks (the run fails when one does not hold): every find count equals the
# number of entries generated, ls lists BIG entries, the sampled contents
# match on the new device.
#
# Results: OUTDIR/<date>-scale.json (runs of the same date are merged, a run
# of the same N replaced) and OUTDIR/<date>-scale.md (table + growth per 10x).
#
# `bench/scale.sh --report` only rewrites the Markdown from the JSON.
#
# Environment: COFFER (binary; default build/coffer), COFFER_COMMIT (what to
# record as the build; default the checkout's HEAD), SCALE_ROOT
# [/tmp/coffer-scale] (work folder, real disk, >= 20 GB free), OUTDIR
# [bench/results], SEED [1], WRITERS [4], BIG [100000], SETTLE [5], STRIDE
# [97], KEEP=1 (keep the work folder), DATE [today].
#
# Cost on a 2-vCPU machine with a load of ~10 (2026-11-29): N=10 000 1.5 min,
# 100 000 5 min, 1 000 000 24 min; at 1 000 000 the work folder peaks at
# about 4 GB (vault 1.4 GB, state 1.7 GB, new device's state 0.9 GB) and the
# daemon at 2.2 GB resident (publish). Every mount is bounded by timeout and
# unmounted on exit; only the daemons this script started are ended.
set -euo pipefail
export LC_ALL=C
[ $# -ge 1 ] || { echo "usage: bench/scale.sh N [N...] | --report   (see the header)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench/scale.sh: needs root (drop_caches)" >&2; exit 2; }

SRC=$(cd "$(dirname "$0")/.." && pwd)
COFFER=$(readlink -f "${COFFER:-$SRC/build/coffer}")
[ -x "$COFFER" ] || { echo "not executable: $COFFER (set COFFER)" >&2; exit 2; }
SCALE_ROOT=${SCALE_ROOT:-/tmp/coffer-scale}
OUTDIR=${OUTDIR:-$SRC/bench/results}
SEED=${SEED:-1}
WRITERS=${WRITERS:-4}
BIG=${BIG:-100000}
SETTLE=${SETTLE:-5}
STRIDE=${STRIDE:-97}
DATE=${DATE:-$(date +%Y-%m-%d)}
MIN_FREE_GB=20
mkdir -p "$SCALE_ROOT" "$OUTDIR"

# ------------------------------------------------------------ the C helper
GEN=$SCALE_ROOT/scalegen
cat >"$SCALE_ROOT/scalegen.c" <<'C'
/* scalegen tree ROOT N SEED W | big ROOT COUNT W | verify ROOT N SEED STRIDE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t mix(uint64_t x) { /* splitmix64 */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static size_t content(uint64_t seed, uint64_t i, unsigned char *buf) {
    uint64_t s = mix(seed * 0x100000001b3ull ^ mix(i));
    size_t len = (size_t)(s % 2049);
    for (size_t k = 0; k < len; k += 8) {
        s = mix(s);
        memcpy(buf + k, &s, len - k < 8 ? len - k : 8);
    }
    return len;
}
static void die(const char *what, const char *path) {
    fprintf(stderr, "scalegen: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}
/* Layout: D = ceil(N/10) leaf dirs, S per top dir, file i in leaf i/10. */
static uint64_t g_n, g_d, g_s, g_top;
static void layout(uint64_t n) {
    g_n = n; g_d = (n + 9) / 10;
    g_s = (uint64_t)ceil(sqrt((double)g_d));
    g_top = (g_d + g_s - 1) / g_s;
}
static void file_path(char *p, size_t cap, const char *root, uint64_t i) {
    uint64_t d = i / 10;
    snprintf(p, cap, "%s/tree/t%03llu/s%03llu/f%llu", root, (unsigned long long)(d / g_s),
             (unsigned long long)(d % g_s), (unsigned long long)(i % 10));
}
static void tree_worker(const char *root, uint64_t seed, int w, int nw) {
    unsigned char buf[2056];
    char p[4096];
    for (uint64_t t = (uint64_t)w; t < g_top; t += (uint64_t)nw) {
        snprintf(p, sizeof p, "%s/tree/t%03llu", root, (unsigned long long)t);
        if (mkdir(p, 0755) != 0) die("mkdir", p);
        for (uint64_t s = 0; s < g_s; s++) {
            uint64_t d = t * g_s + s;
            if (d >= g_d) break;
            snprintf(p, sizeof p, "%s/tree/t%03llu/s%03llu", root, (unsigned long long)t, (unsigned long long)s);
            if (mkdir(p, 0755) != 0) die("mkdir", p);
            for (uint64_t i = d * 10; i < d * 10 + 10 && i < g_n; i++) {
                file_path(p, sizeof p, root, i);
                size_t len = content(seed, i, buf);
                int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
                if (fd < 0) die("create", p);
                if (len && write(fd, buf, len) != (ssize_t)len) die("write", p);
                if (close(fd) != 0) die("close", p);
            }
        }
    }
}
static void big_worker(const char *root, uint64_t count, int w, int nw) {
    char p[4096];
    for (uint64_t i = (uint64_t)w; i < count; i += (uint64_t)nw) {
        snprintf(p, sizeof p, "%s/big/e%06llu", root, (unsigned long long)i);
        int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) die("create", p);
        if (close(fd) != 0) die("close", p);
    }
}
static int run_parallel(int nw, void (*fn)(int, int)) {
    pid_t *pids = calloc((size_t)nw, sizeof *pids);
    for (int w = 0; w < nw; w++) {
        pids[w] = fork();
        if (pids[w] < 0) die("fork", "");
        if (pids[w] == 0) { fn(w, nw); _exit(0); }
    }
    int bad = 0;
    for (int w = 0; w < nw; w++) {
        int st;
        if (waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    free(pids);
    return bad;
}
static const char *a_root; static uint64_t a_seed, a_count;
static void tree_fn(int w, int nw) { tree_worker(a_root, a_seed, w, nw); }
static void big_fn(int w, int nw) { big_worker(a_root, a_count, w, nw); }

int main(int argc, char **argv) {
    char p[4096];
    if (argc == 6 && !strcmp(argv[1], "tree")) {
        a_root = argv[2]; layout(strtoull(argv[3], 0, 10)); a_seed = strtoull(argv[4], 0, 10);
        snprintf(p, sizeof p, "%s/tree", a_root);
        if (mkdir(p, 0755) != 0) die("mkdir", p);
        int bad = run_parallel(atoi(argv[5]), tree_fn);
        /* entries under ROOT/tree, itself included */
        printf("%llu\n", (unsigned long long)(1 + g_top + g_d + g_n));
        return bad;
    }
    if (argc == 5 && !strcmp(argv[1], "big")) {
        a_root = argv[2]; a_count = strtoull(argv[3], 0, 10);
        snprintf(p, sizeof p, "%s/big", a_root);
        if (mkdir(p, 0755) != 0) die("mkdir", p);
        return run_parallel(atoi(argv[4]), big_fn);
    }
    if (argc == 6 && !strcmp(argv[1], "verify")) {
        const char *root = argv[2];
        layout(strtoull(argv[3], 0, 10));
        uint64_t seed = strtoull(argv[4], 0, 10), stride = strtoull(argv[5], 0, 10);
        unsigned char want[2056], got[4096];
        uint64_t checked = 0, bad = 0;
        for (uint64_t i = 0; i < g_n; i += stride) {
            file_path(p, sizeof p, root, i);
            size_t len = content(seed, i, want);
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            ssize_t r = fd < 0 ? -1 : read(fd, got, sizeof got);
            if (fd >= 0) close(fd);
            checked++;
            if (r != (ssize_t)len || memcmp(want, got, len) != 0) {
                if (bad < 5) fprintf(stderr, "scalegen: %s: %zd bytes, expected %zu%s\n", p, r, len,
                                     r == (ssize_t)len ? " (contents differ)" : "");
                bad++;
            }
        }
        printf("%llu %llu\n", (unsigned long long)checked, (unsigned long long)bad);
        return bad != 0;
    }
    fprintf(stderr, "usage: scalegen tree ROOT N SEED W | big ROOT COUNT W | verify ROOT N SEED STRIDE\n");
    return 2;
}
C
cc -O2 -Wall -Wextra -o "$GEN" "$SCALE_ROOT/scalegen.c" -lm

# ------------------------------------------------------------ helpers
MOUNTED=()
DAEMONS=()
SAMPLER=
cleanup() {
    local m p
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    for m in "${MOUNTED[@]:-}"; do
        [ -n "$m" ] || continue
        if awk -v m="$m" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
            timeout 600 "$COFFER" unmount "$m" >/dev/null 2>&1 || fusermount3 -u -z "$m" 2>/dev/null || true
        fi
    done
    for p in "${DAEMONS[@]:-}"; do
        [ -n "$p" ] || continue
        if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" == "$COFFER" ]; then kill "$p" 2>/dev/null || true; fi
    done
    if [ "${KEEP:-0}" != 1 ] && [ -n "${RUN:-}" ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
say() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
free_gb() { df -P -B1G "$SCALE_ROOT" | awk 'NR == 2 { print $4 }'; }
load() { cut -d' ' -f1 /proc/loadavg; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
daemon_of() { tr -dc 0-9 <"$1/daemon.pid"; }
bytes() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# mount_timed STATE: sets MOUNT_S to the seconds from `coffer mount` to the
# first answer of stat MP/tree; records the mountpoint and the daemon.
mount_timed() {
    local t st=$1
    t=$(now)
    timeout "$TLONG" "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$st" </dev/null >/dev/null \
        || die "coffer mount --state $st"
    MOUNTED+=("$M")
    DAEMONS+=("$(daemon_of "$st")")
    timeout 600 stat "$M/tree" >/dev/null || die "$M/tree does not answer after mount"
    MOUNT_S=$(since "$t")
}
unmount() {
    timeout "$TLONG" "$COFFER" unmount "$M" >/dev/null || die "coffer unmount"
}
# sample_rss PID OUT: max VmRSS (KiB) every 0.1 s into OUT, until killed.
sample_rss() {
    local pid=$1 out=$2
    ( m=0; while [ -r "/proc/$pid/status" ]; do
          r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
          [ "${r:-0}" -gt "$m" ] && { m=$r; echo "$m" >"$out"; }
          sleep 0.1
      done ) &
    SAMPLER=$!
}
stop_sampler() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; }
timed() { local t; t=$(now); "$@" >/dev/null; since "$t"; }
count() { timeout "$TLONG" "$@" | wc -l; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

JSON_LINES=$SCALE_ROOT/runs.jsonl
: >"$JSON_LINES"

# ------------------------------------------------------------ one size
run_size() {
    local N=$1
    local fg; fg=$(free_gb)
    [ "$fg" -ge "$MIN_FREE_GB" ] || die "only ${fg} GB free under $SCALE_ROOT (need >= $MIN_FREE_GB GB); not starting N=$N"
    TLONG=$((900 + N / 100))
    RUN=$SCALE_ROOT/run-$N
    rm -rf "$RUN"; mkdir -p "$RUN"
    V=$RUN/vault M=$RUN/mnt S1=$RUN/state S2=$RUN/state-newdev PW=$RUN/pw
    mkdir -p "$V" "$M"
    printf 'scale bench password\n' >"$PW"; chmod 600 "$PW"
    local load0; load0=$(load)
    say "N=$N: init + mount (load $load0, ${fg} GB free)"
    timeout 300 "$COFFER" init "$V" --insecure-fast-kdf --password-file "$PW" \
        --recovery-key-file "$RUN/rk" </dev/null >/dev/null || die "coffer init"
    timeout 300 "$COFFER" mount "$V" "$M" --password-file "$PW" --state "$S1" </dev/null >/dev/null || die "coffer mount"
    MOUNTED+=("$M"); local pid; pid=$(daemon_of "$S1"); DAEMONS+=("$pid")

    # generation
    say "N=$N: generating the tree with $WRITERS writers"
    local c0 t tree_entries gen_tree gen_big c1 hwm_gen rss_gen
    c0=$(cpu_s "$pid"); t=$(now)
    tree_entries=$(timeout "$TLONG" "$GEN" tree "$M" "$N" "$SEED" "$WRITERS") || die "generating the tree"
    gen_tree=$(since "$t")
    say "N=$N: tree done in ${gen_tree}s; big/ ($BIG entries)"
    t=$(now)
    timeout "$TLONG" "$GEN" big "$M" "$BIG" "$WRITERS" || die "generating big/"
    gen_big=$(since "$t")
    c1=$(cpu_s "$pid")
    hwm_gen=$(status_kib "$pid" VmHWM); rss_gen=$(status_kib "$pid" VmRSS)
    local entries=$((1 + tree_entries + 1 + BIG))   # MP, tree..., big, big/*
    local files=$((N + BIG))
    local state_gen; state_gen=$(bytes "$S1")

    # publish
    say "N=$N: publish"
    local out publish ops objs c2 hwm_pub rss_pub vault_b vault_files
    sample_rss "$pid" "$RUN/rss-publish"
    t=$(now)
    out=$(timeout "$TLONG" "$COFFER" sync "$M" </dev/null) || die "coffer sync (publish): $out"
    publish=$(since "$t")
    stop_sampler
    c2=$(cpu_s "$pid")
    ops=$(sed -n 's/.*published \([0-9]*\) operations.*/\1/p' <<<"$out")
    objs=$(sed -n 's/.*operations, \([0-9]*\) objects.*/\1/p' <<<"$out")
    hwm_pub=$(status_kib "$pid" VmHWM); rss_pub=$(status_kib "$pid" VmRSS)
    vault_b=$(bytes "$V"); vault_files=$(find "$V" -type f | wc -l)
    local idx_mounted; idx_mounted=$(bytes "$S1"/index.db*)
    local state_pub; state_pub=$(bytes "$S1")
    say "N=$N: published $ops ops, $objs objects in ${publish}s; HWM ${hwm_pub} KiB"

    # unmount, remount with the existing state
    t=$(now); unmount; local unmount_s; unmount_s=$(since "$t")
    local idx_unmounted; idx_unmounted=$(bytes "$S1"/index.db*)
    local state_b; state_b=$(bytes "$S1")
    drop
    mount_timed "$S1"; local remount=$MOUNT_S
    pid=$(daemon_of "$S1")
    sleep "$SETTLE"
    local rss_idle hwm_mount; rss_idle=$(status_kib "$pid" VmRSS); hwm_mount=$(status_kib "$pid" VmHWM)
    say "N=$N: remount ${remount}s, idle RSS ${rss_idle} KiB"

    # ls of big/
    local n lsf_cold lsf_warm lsl_cold lsl_warm
    drop; t=$(now); n=$(count ls -f "$M/big"); lsf_cold=$(since "$t")
    [ "$n" -eq $((BIG + 2)) ] || die "ls -f big/ listed $n entries, expected $((BIG + 2))"
    t=$(now); n=$(count ls -f "$M/big"); lsf_warm=$(since "$t")
    drop; t=$(now); n=$(count ls -l "$M/big"); lsl_cold=$(since "$t")
    [ "$n" -eq $((BIG + 1)) ] || die "ls -l big/ printed $n lines, expected $((BIG + 1))"
    t=$(now); n=$(count ls -l "$M/big"); lsl_warm=$(since "$t")
    local hwm_ls; hwm_ls=$(status_kib "$pid" VmHWM)

    # find
    local find_cold find_warm rss_find hwm_find rss_after_find
    drop
    sample_rss "$pid" "$RUN/rss-find"
    t=$(now); n=$(count find "$M"); find_cold=$(since "$t")
    [ "$n" -eq "$entries" ] || die "find listed $n entries, expected $entries"
    t=$(now); n=$(count find "$M"); find_warm=$(since "$t")
    stop_sampler
    rss_find=$(cat "$RUN/rss-find" 2>/dev/null || echo None)
    hwm_find=$(status_kib "$pid" VmHWM); rss_after_find=$(status_kib "$pid" VmRSS)
    say "N=$N: find cold ${find_cold}s warm ${find_warm}s, RSS max ${rss_find} KiB"

    # no-op sync
    local a b c noop
    a=$(timed timeout 600 "$COFFER" sync "$M"); b=$(timed timeout 600 "$COFFER" sync "$M"); c=$(timed timeout 600 "$COFFER" sync "$M")
    noop=$(median3 "$a" "$b" "$c")
    out=$(timeout 600 "$COFFER" sync "$M") || die "no-op sync"
    grep -q 'published 0 operations' <<<"$out" || die "the no-op sync published something: $out"
    unmount

    # a new device
    say "N=$N: new device (fresh state)"
    drop
    local newdev newdev_hwm newdev_rss newdev_find newdev_cpu
    mount_timed "$S2"; newdev=$MOUNT_S
    pid=$(daemon_of "$S2")
    newdev_hwm=$(status_kib "$pid" VmHWM); newdev_cpu=$(cpu_s "$pid")
    sleep "$SETTLE"
    newdev_rss=$(status_kib "$pid" VmRSS)
    drop
    t=$(now); n=$(count find "$M"); newdev_find=$(since "$t")
    [ "$n" -eq "$entries" ] || die "new device: find listed $n entries, expected $entries"
    local ver checked
    ver=$(timeout "$TLONG" "$GEN" verify "$M" "$N" "$SEED" "$STRIDE") || die "new device: contents differ ($ver)"
    read -r checked _ <<<"$ver"
    local newdev_idx; newdev_idx=$(bytes "$S2"/index.db*)
    unmount
    local newdev_idx_unm; newdev_idx_unm=$(bytes "$S2"/index.db*)
    say "N=$N: new device mount ${newdev}s, HWM ${newdev_hwm} KiB; verified $checked files"

    python3 - "$JSON_LINES" <<PY
import json, sys
r = dict(n_files_tree=$N, big_entries=$BIG, files=$files, entries=$entries, writers=$WRITERS, seed=$SEED,
    load_at_start=$load0,
    gen_tree_s=$gen_tree, gen_big_s=$gen_big,
    gen_tree_files_per_s=round($N / $gen_tree), gen_big_files_per_s=round($BIG / $gen_big),
    gen_daemon_cpu_s=round($c1 - $c0, 2), gen_vmhwm_kib=$hwm_gen, gen_vmrss_kib=$rss_gen,
    state_after_gen_bytes=$state_gen,
    publish_s=$publish, publish_ops=$ops, publish_objects=$objs, publish_daemon_cpu_s=round($c2 - $c1, 2),
    publish_vmhwm_kib=$hwm_pub, publish_vmrss_after_kib=$rss_pub,
    publish_vmrss_sampled_max_kib=$(cat "$RUN/rss-publish" 2>/dev/null || echo None),
    vault_bytes=$vault_b, vault_files=$vault_files, vault_bytes_per_file=round($vault_b / $files, 1),
    index_bytes_mounted=$idx_mounted, index_bytes=$idx_unmounted,
    index_bytes_per_entry=round($idx_unmounted / $entries, 1), state_bytes=$state_b, state_after_publish_bytes=$state_pub,
    unmount_s=$unmount_s, remount_s=$remount, remount_vmhwm_kib=$hwm_mount, idle_vmrss_kib=$rss_idle,
    ls_f_cold_s=$lsf_cold, ls_f_warm_s=$lsf_warm, ls_l_cold_s=$lsl_cold, ls_l_warm_s=$lsl_warm,
    vmhwm_after_ls_kib=$hwm_ls,
    find_cold_s=$find_cold, find_warm_s=$find_warm, find_vmrss_sampled_max_kib=$rss_find,
    find_vmhwm_kib=$hwm_find, vmrss_after_find_kib=$rss_after_find,
    noop_sync_s=$noop,
    newdev_mount_s=$newdev, newdev_vmhwm_kib=$newdev_hwm, newdev_cpu_s=$newdev_cpu, newdev_idle_vmrss_kib=$newdev_rss,
    newdev_find_cold_s=$newdev_find, newdev_index_bytes_mounted=$newdev_idx, newdev_index_bytes=$newdev_idx_unm,
    verified_files=$checked, load_at_end=$(load))
print(json.dumps(r), file=open(sys.argv[1], "a"))
PY
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$RUN"; fi
    MOUNTED=(); DAEMONS=()
}

# The same big/ on the underlying disk, no FUSE: a reference for the ls rows.
native_ref() {
    local R=$SCALE_ROOT/native t n
    rm -rf "$R"; mkdir -p "$R"
    TLONG=900
    "$GEN" big "$R" "$BIG" "$WRITERS" || die "native big/"
    drop; t=$(now); n=$(count ls -f "$R/big"); local f_cold; f_cold=$(since "$t")
    t=$(now); n=$(count ls -f "$R/big"); local f_warm; f_warm=$(since "$t")
    drop; t=$(now); n=$(count ls -l "$R/big"); local l_cold; l_cold=$(since "$t")
    t=$(now); n=$(count ls -l "$R/big"); local l_warm; l_warm=$(since "$t")
    [ "$n" -eq $((BIG + 1)) ] || die "native ls -l printed $n lines"
    printf '{"fs":"%s","big_entries":%d,"ls_f_cold_s":%s,"ls_f_warm_s":%s,"ls_l_cold_s":%s,"ls_l_warm_s":%s}\n' \
        "$(findmnt -n -o FSTYPE -T "$R" || echo unknown)" "$BIG" "$f_cold" "$f_warm" "$l_cold" "$l_warm" >"$SCALE_ROOT/native.json"
    rm -rf "$R"
    say "native reference: ls -f big/ cold ${f_cold}s warm ${f_warm}s, ls -l cold ${l_cold}s warm ${l_warm}s"
}

SIZES=("$@")
[ "$1" == "--report" ] && SIZES=()
for N in "${SIZES[@]}"; do
    [[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 10 ] || die "N must be a number >= 10: $N"
done
if [ ${#SIZES[@]} -gt 0 ]; then
    say "coffer $COFFER; work folder $SCALE_ROOT ($(free_gb) GB free); sizes ${SIZES[*]}"
    native_ref
    for N in "${SIZES[@]}"; do run_size "$N"; done
fi

# ------------------------------------------------------------ report
COMMIT=${COFFER_COMMIT:-$(git -C "$SRC" log -1 --format=%h 2>/dev/null || echo unknown)}
python3 - "$JSON_LINES" "$OUTDIR/$DATE-scale.json" "$OUTDIR/$DATE-scale.md" "$COMMIT" "$COFFER" "$SCALE_ROOT/native.json" <<'PY'
import json, math, os, platform, subprocess, sys
lines, jpath, mpath, commit, binary, npath = sys.argv[1:7]
new = [json.loads(l) for l in open(lines) if l.strip()]
doc = {"runs": []}
if os.path.exists(jpath):
    doc = json.load(open(jpath))
for r in new:
    r["commit"] = commit
    r["binary"] = binary
doc["runs"] = sorted([r for r in doc["runs"] if r["n_files_tree"] not in {x["n_files_tree"] for x in new}] + new,
                     key=lambda r: r["n_files_tree"])
doc["machine"] = {"kernel": platform.release(), "cpus": os.cpu_count(),
                  "mem_kib": int(open("/proc/meminfo").readline().split()[1])}
doc.setdefault("native_reference", [])
if new:
    nat = json.load(open(npath))
    nat["with_runs"] = [r["n_files_tree"] for r in new]
    doc["native_reference"].append(nat)
    json.dump(doc, open(jpath, "w"), indent=1)
runs = doc["runs"]

rows = [  # key, label, unit scale
    ("gen_tree_s", "generate the tree (s)"), ("gen_tree_files_per_s", "  files/s"),
    ("gen_big_s", "generate big/ (s)"), ("gen_daemon_cpu_s", "  daemon CPU during generation (s)"),
    ("publish_s", "publish: `coffer sync` (s)"), ("publish_ops", "  operations"), ("publish_objects", "  objects"),
    ("publish_daemon_cpu_s", "  daemon CPU (s)"), ("publish_vmhwm_kib", "  daemon VmHWM after publish (KiB)"),
    ("gen_vmhwm_kib", "  daemon VmHWM before publish (KiB)"),
    ("vault_bytes", "vault bytes"), ("vault_files", "vault files"), ("vault_bytes_per_file", "  vault bytes per file"),
    ("index_bytes", "index.db* bytes (unmounted)"), ("index_bytes_per_entry", "  index bytes per entry"),
    ("state_bytes", "state folder bytes (unmounted)"),
    ("unmount_s", "unmount after publish (s)"),
    ("remount_s", "mount with existing state, cold (s)"), ("idle_vmrss_kib", "  idle VmRSS (KiB)"),
    ("ls_f_cold_s", "`ls -f big/` cold (s)"), ("ls_f_warm_s", "`ls -f big/` warm (s)"),
    ("ls_l_cold_s", "`ls -l big/` cold (s)"), ("ls_l_warm_s", "`ls -l big/` warm (s)"),
    ("find_cold_s", "`find MP \\| wc -l` cold (s)"), ("find_warm_s", "`find MP \\| wc -l` warm (s)"),
    ("find_vmrss_sampled_max_kib", "  VmRSS max during find (KiB)"), ("find_vmhwm_kib", "  VmHWM after find (KiB)"),
    ("vmrss_after_find_kib", "  VmRSS after find (KiB)"),
    ("noop_sync_s", "no-op `coffer sync` (s)"),
    ("newdev_mount_s", "new device: mount (replay), cold (s)"), ("newdev_vmhwm_kib", "  VmHWM after mount (KiB)"),
    ("newdev_idle_vmrss_kib", "  idle VmRSS (KiB)"), ("newdev_find_cold_s", "  `find` cold (s)"),
]
def fmt(v):
    if v is None: return "–"
    if isinstance(v, float) and v < 100: return f"{v:.3g}" if v < 10 else f"{v:.1f}"
    return f"{int(round(v)):,}".replace(",", " ")
out = ["# coffer scale benchmark (bench/scale.sh)", "",
       f"commit {commit}; {runs[0].get('writers')} writers; big/ = {runs[0].get('big_entries')} empty files at every size; "
       f"kernel {doc['machine']['kernel']}, {doc['machine']['cpus']} CPUs, "
       f"{doc['machine']['mem_kib'] // 1048576} GiB. Shared machine: single runs, figures are noisy.", "",
       "Run as root: `COFFER=build/coffer bench/scale.sh 10000 100000 1000000` (one vault per N, "
       "created with --insecure-fast-kdf; every step's command is in the script's header).", ""]
def name(n): return f"{n:,}".replace(",", " ")
hdr = "| figure | " + " | ".join(f"N={name(r['n_files_tree'])}" for r in runs)
pairs = list(range(len(runs) - 1))
# big/ is the same at every N, so a cost linear in N is a + b*N: its ratio
# per 10x N stays under 10x. The marginal cost per 1 000 added tree files
# (b) is what tells linear (same b in every interval) from worse (b grows).
hdr += "".join(f" | ×{runs[i+1]['n_files_tree']/runs[i]['n_files_tree']:.3g} N" for i in pairs)
hdr += "".join(f" | per 1k files {name(runs[i]['n_files_tree'])}→{name(runs[i+1]['n_files_tree'])}" for i in pairs)
if len(runs) > 2:
    hdr += " | marginal, last / first interval"
ncols = 1 + len(runs) + 2 * len(pairs) + (1 if len(runs) > 2 else 0)
out += [hdr + " |", "|" + "---|" * ncols]
out.append("| entries (files + dirs, find) | " + " | ".join(fmt(r["entries"]) for r in runs) + " |" * (ncols - 1 - len(runs)) + " |")
def fmtm(v):
    if v is None: return "–"
    return f"{v:.3g}"
for k, label in rows:
    vals = [r.get(k) for r in runs]
    line = f"| {label} | " + " | ".join(fmt(v) for v in vals)
    ratios, margs = [], []
    for i in pairs:
        a, b = vals[i], vals[i + 1]
        ratios.append(f"{b / a:.2f}×" if a and b is not None else "–")
        dn = runs[i + 1]["n_files_tree"] - runs[i]["n_files_tree"]
        margs.append((b - a) / dn * 1000 if a is not None and b is not None else None)
    line += "".join(" | " + x for x in ratios) + "".join(" | " + fmtm(m) for m in margs)
    if len(runs) > 2:
        m0, m1 = margs[0], margs[-1]
        line += " | " + (f"{m1 / m0:.2f}" if m0 and m1 is not None and abs(m0) > 1e-12 else "–")
    out.append(line + " |")
out += ["", "Marginal cost: (figure(N2) − figure(N1)) / (N2 − N1) × 1000, in the figure's unit per 1 000 tree files.",
        "A marginal ratio near 1 means linear growth in N; above 1, faster than linear (beware: single runs on a busy machine).",
"Cold = after `sync; echo 3 > /proc/sys/vm/drop_caches` (kernel caches only, not the daemon's)."]
nat = doc["native_reference"][-1]
out += ["", "The same big/ (%d empty files) on the underlying %s, no FUSE, in each invocation:" % (nat["big_entries"], nat["fs"]), "",
        "| runs | ls -f cold | ls -f warm | ls -l cold | ls -l warm |", "|---|---|---|---|---|"]
for x in doc["native_reference"]:
    out.append(f"| N={x['with_runs']} | {x['ls_f_cold_s']} s | {x['ls_f_warm_s']} s | {x['ls_l_cold_s']} s | {x['ls_l_warm_s']} s |")
open(mpath, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
say "results: $OUTDIR/$DATE-scale.json, $OUTDIR/$DATE-scale.md"
