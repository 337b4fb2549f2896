#!/usr/bin/env bash
# Random-operation model test (fsx/fsstress style; issue 3 part 2).
#
# For each seed: a new vault, mounted; tests/integration/model.py applies one
# seeded random sequence of operations to the mount and to a plain folder on
# the same disk side by side (writes at random offsets and sizes across the
# 16 KiB block and 4 MiB extent edges and far past the end, O_APPEND pwrite,
# truncate, fallocate in every mode, mmap writes, reads, rename incl.
# RENAME_NOREPLACE/RENAME_EXCHANGE, link, unlink, mkdir, rmdir, symlink,
# chmod, utime with ns, xattrs, fsync, files kept open across operations) and
# compares results, errnos, metadata and bytes after every step and the whole
# tree every few hundred steps. Every 1200-3000 steps it asks this script for
# a checkpoint: `coffer sync MNT`, or unmount + mount with the same --state,
# or unmount + mount with a NEW --state (a new device rebuilding its index
# from the vault); after a remount every file is compared in full. Each seed
# ends with a new-device remount, a full compare, unmount and `coffer fsck`.
#
#   COFFER_MODEL_SEED   seeds, space or comma separated (default 1 2 3 4 5);
#                       "random" picks one and prints it
#   COFFER_MODEL_OPS    operations per seed (default 20000)
#   COFFER_MODEL_TRACE  a folder: each seed's operations are written there as
#                       JSON lines (seed-N.jsonl)
#   COFFER_MODEL_REPLAY a trace file to run instead of generating (with one seed)
#   COFFER_MODEL_VERBOSE 1: progress and checkpoint details, 2: every operation
#   COFFER_MODEL_WIDE_TIMES=1  utime also with times after 2262-04-11 (see below)
#
# coffer stores times as signed 64-bit nanoseconds (1677-09-21 to 2262-04-11)
# and clamps times outside that (ext4 stores up to 2446), so --wide-times
# (COFFER_MODEL_WIDE_TIMES=1) is expected to differ from a plain folder;
# test_basic_ops.sh checks the clamping. It is off by default.
source "$(dirname "$0")/lib.sh"

MODEL_PY=$COFFER_SOURCE_DIR/tests/integration/model.py
[ -r "$MODEL_PY" ] || fatal "no $MODEL_PY"
SEEDS=${COFFER_MODEL_SEED:-1 2 3 4 5}
SEEDS=${SEEDS//,/ }
if [ "$SEEDS" = random ]; then
    SEEDS=$(( RANDOM << 15 | RANDOM ))
    log "random seed: $SEEDS"
fi
OPS=${COFFER_MODEL_OPS:-20000}
VERBOSE=${COFFER_MODEL_VERBOSE:-0}
TOTAL_OPS=0
START=$(date +%s)

# remount KIND (same|new): unmount (which publishes) and mount again, on the
# same state folder, or (new) after a `coffer sync` on a new state folder: a
# new device, which rebuilds its index from the vault. The old device's
# state is dropped (one device at a time).
remount() {
    local kind=$1 out old n
    if [ "$kind" = new ]; then
        out=$(coffer sync "$MNT" 2>&1) || { echo "coffer sync before the new device failed: $out"; return 1; }
    fi
    out=$(coffer_unmount 2>&1) || { echo "coffer unmount failed: $out"; return 1; }
    if [ "$kind" = new ]; then
        old=$STATE
        NDEV=$((NDEV + 1))
        STATE=$SEED_DIR/state.$NDEV
        rm -rf "$old"
    fi
    out=$(coffer_mount 2>&1) || { echo "coffer mount failed: $out"; return 1; }
    is_mounted "$MNT" || { echo "not mounted after coffer mount"; return 1; }
    [ "$VERBOSE" -gt 0 ] && printf '%s\n' "$out" | sed 's/^/     /' >&2
    if [ "$kind" = new ]; then
        # Known (reported, not a mismatch): operations on a file that was
        # unlinked while open are journaled; a new device replaying them
        # finds no such node and skips them with a warning.
        n=$(grep -c 'an operation did not apply' "$STATE/coffer.log" 2>/dev/null)
        [ "${n:-0}" -gt 0 ] && echo "new device: $n journal operation(s) skipped on replay" >>"$SEED_DIR/notes"
    fi
    return 0
}

run_seed() {
    local seed=$1 ops=$2 wide=${3:-} line result="" rc out args env="" i
    SEED_DIR=$T/seed-$seed
    CLOUD=$SEED_DIR/cloud MNT=$SEED_DIR/mnt STATE=$SEED_DIR/state.0 REF=$SEED_DIR/plain NDEV=0
    # shellcheck disable=SC2034  # RK is read by lib.sh's coffer_init
    RK=$SEED_DIR/recovery.key
    mkdir -p "$CLOUD" "$MNT" "$REF"
    coffer_init >/dev/null || { fail "seed $seed: coffer init"; return; }
    coffer_mount >/dev/null || { fail "seed $seed: coffer mount"; return; }
    is_mounted "$MNT" || { fail "seed $seed: not mounted"; return; }

    args=(--mnt "$MNT" --ref "$REF" --seed "$seed" --ops "$ops")
    [ -n "$wide" ] && { args+=(--wide-times); env+="COFFER_MODEL_WIDE_TIMES=1 "; }
    [ -n "${COFFER_MODEL_TRACE:-}" ] && { mkdir -p "$COFFER_MODEL_TRACE"; args+=(--trace "$COFFER_MODEL_TRACE/seed-$seed.jsonl"); }
    [ -n "${COFFER_MODEL_REPLAY:-}" ] && { args+=(--replay "$(readlink -f "$COFFER_MODEL_REPLAY")");
        env+="COFFER_MODEL_REPLAY=$COFFER_MODEL_REPLAY "; }
    args+=(--replay-env "$env")
    for ((i = 0; i < VERBOSE; i++)); do args+=(-v); done
    log "seed $seed: $ops operations${wide:+ (with times after 2262)}"
    # shellcheck disable=SC2086  # COFFER_MODEL_PYTHON may carry options (-m cProfile -o F)
    coproc MODEL { exec ${COFFER_MODEL_PYTHON:-python3} "$MODEL_PY" "${args[@]}"; }
    # shellcheck disable=SC2153  # MODEL_PID is set by coproc
    local from=${MODEL[0]} to=${MODEL[1]} pid=$MODEL_PID
    while IFS= read -r line <&"$from"; do
        case $line in
            "REQ sync")
                if out=$(coffer sync "$MNT" 2>&1); then
                    echo OK >&"$to"
                else
                    echo "ERR coffer sync exit $?: $(printf '%s' "$out" | tr '\n' ' ')" >&"$to"
                fi
                [ "$VERBOSE" -gt 0 ] && printf '     %s\n' "$out" >&2 ;;
            "REQ remount same" | "REQ remount new")
                if out=$(remount "${line#REQ remount }"); then
                    echo OK >&"$to"
                else
                    echo "ERR $(printf '%s' "$out" | tr '\n' ' ')" >&"$to"
                fi ;;
            "RESULT "*) result=${line#RESULT } ;;
            *) printf 'model: %s\n' "$line" ;;
        esac
    done
    wait "$pid"
    rc=$?
    case $result in
        ok*)
            if [ "$rc" -eq 0 ]; then pass "seed $seed: $result"; else fail "seed $seed: model exit $rc after: $result"; fi
            TOTAL_OPS=$((TOTAL_OPS + $(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$result"))) ;;
        fail*) fail "seed $seed: ${result#fail }" ;;
        *) fail "seed $seed: the model ended without a result (exit $rc; a traceback above?)" ;;
    esac
    [ -s "$SEED_DIR/notes" ] && log "seed $seed: note: $(awk '{ s += $3 } END { print s }' "$SEED_DIR/notes") journal operation(s) skipped on new-device replays (\"an operation did not apply: journal names an unknown node\", from operations on files unlinked while open)"
    out=$(coffer_unmount 2>&1) || fail "seed $seed: final coffer unmount" "$out"
    if is_mounted "$MNT"; then
        fail "seed $seed: still mounted after unmount"
        return
    fi
    check "seed $seed: coffer fsck after the run" coffer fsck "$CLOUD" --password-file "$PW"
    [ "$FAILED" -eq 0 ] && [ -z "${KEEP_TMP:-}" ] && rm -rf "$SEED_DIR"
}

for seed in $SEEDS; do
    run_seed "$seed" "$OPS" "$([ "${COFFER_MODEL_WIDE_TIMES:-0}" = 1 ] && echo wide)"
done
log "$TOTAL_OPS operations over seeds: $SEEDS; $(( $(date +%s) - START )) s"
finish
