# shellcheck shell=bash
# Shared by the size sweeps (bench/blocksize.sh, extentsize.sh, packsize.sh),
# sourced after BENCH_ROOT and COFFER are set (packsize.sh sets COFFER per
# build).
#
# sweep_setup NAME: W (a new work folder under $BENCH_ROOT, removed on exit,
# with $MNT unmounted first if still mounted), MNT, W/pw (a password),
# W/results (empty: one line per measurement, "KEY REP VALUE...").
sweep_setup() {
    [ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, FUSE)" >&2; exit 2; }
    mkdir -p "$BENCH_ROOT"
    W=$(mktemp -d "$BENCH_ROOT/$1.XXXXXX")
    MNT=$W/mnt
    trap sweep_cleanup EXIT
    mkdir -p "$MNT"
    echo "benchmark password" >"$W/pw"
    : >"$W/results"
}
sweep_cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null && [ -n "${COFFER:-}" ]; then
        timeout 60 "$COFFER" unmount "$MNT" >/dev/null 2>&1 || fusermount3 -u -z "$MNT"
    fi
    rm -rf "$W"
}
# sweep_init [INIT ARGS...]: a fresh vault in W/vault (state and recovery key gone too).
sweep_init() {
    rm -rf "$W/vault" "$W/state" "$W/state2" "$W/rk"
    timeout 60 "$COFFER" init "$W/vault" --password-file "$W/pw" --recovery-key-file "$W/rk" \
        --insecure-fast-kdf "$@" >/dev/null
}
# sweep_mount [STATE]: W/vault on MNT, with local state W/state (or STATE).
sweep_mount() {
    timeout 600 "$COFFER" mount "$W/vault" "$MNT" --password-file "$W/pw" --state "${1:-$W/state}" >/dev/null
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
since() { echo "$EPOCHREALTIME - $1" | bc; }
# median_row KEY LABEL FORMAT: one Markdown row from the lines of W/results
# whose first field is KEY: FORMAT (a Python format string) gets LABEL as
# {label} and the median of each value column (the third field on) as {0}, {1}, ...
median_row() {
    awk -v k="$1" '$1 == k' "$W/results" | python3 -c '
import sys, statistics as st
label, fmt = sys.argv[1], sys.argv[2]
rows = [l.split() for l in sys.stdin]
cols = [st.median(float(r[i]) for r in rows) for i in range(2, len(rows[0]))]
print(fmt.format(*cols, label=label))' "$2" "$3"
}
