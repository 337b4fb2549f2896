#!/usr/bin/env bash
# Set-user-ID and set-group-ID bits dropped where Linux drops them. With
# FUSE_HANDLE_KILLPRIV_V2 (src/fuse/wire.h) the kernel leaves this to coffer:
# it flags writes and truncates by a caller without CAP_FSETID, and every
# chown, and stops refreshing the file's attributes first. Each probe runs on
# a plain folder and on the mount (with the write-back cache, and without
# it), as root or as uid 65534, and must leave the mode the plain folder
# shows, as the daemon stores it too (after a remount).
source "$(dirname "$0")/lib.sh"

use_nobody

# probes DIR: one line per probe, "name -> mode after".
probes() {
    local d=$1
    chmod 0777 "$d"
    # mk NAME MODE [OWNER]: a 3-byte file of that mode (owner 65534 unless given).
    mk() {
        rm -f "$d/$1"
        printf 'abc' >"$d/$1"
        chown "${3:-$NOBODY:$NOBODY}" "$d/$1"
        chmod "$2" "$d/$1"
    }
    out() { echo "$1 -> $(stat -c %a "$d/$2")"; }
    mk w1 6775; as_nobody sh -c "printf x >>'$d/w1'"; out "write by owner, 6775" w1
    mk w2 2745; as_nobody sh -c "printf x >>'$d/w2'"; out "write by owner, setgid without group exec" w2
    mk w3 4755; printf x >>"$d/w3"; out "write by root, 4755" w3
    mk w4 0755; as_nobody sh -c "printf x >>'$d/w4'"; out "write by owner, no privileges" w4
    mk o1 6775; as_nobody sh -c "printf yy >'$d/o1'"; out "open O_TRUNC and write by owner, 6775" o1
    mk d1 6775
    as_nobody dd if=/dev/zero of="$d/d1" bs=4096 count=1 oflag=direct conv=notrunc status=none
    out "O_DIRECT write by owner, 6775" d1
    mk t1 6775; as_nobody truncate -s 1 "$d/t1"; out "truncate by owner, 6775" t1
    mk t2 4755; truncate -s 1 "$d/t2"; out "truncate by root, 4755" t2
    mk c1 6775 0:0; chown $NOBODY:$NOBODY "$d/c1"; out "chown by root, 6775" c1
    mk c2 2745 0:0; chown $NOBODY:$NOBODY "$d/c2"; out "chown by root, setgid without group exec" c2
    mk c3 6775; as_nobody chgrp $NOBODY "$d/c3"; out "chgrp to its own group by owner, 6775" c3
    mk c4 6775 0:0; chown 0:0 "$d/c4"; out "chown to the same owner by root, 6775" c4
    mk f1 6775; as_nobody fallocate -l 8192 "$d/f1"; out "fallocate by owner, 6775" f1
    mk f2 4755; fallocate -l 8192 "$d/f2"; out "fallocate by root, 4755" f2
    mk f3 6775; as_nobody fallocate -n -l 8192 "$d/f3"; out "fallocate keep-size by owner, 6775" f3
    mk m1 6775; as_nobody chmod 6770 "$d/m1"; out "chmod by owner keeps what it sets" m1
    # chown(f, -1, -1) gives nothing away, yet Linux drops the bits. With
    # the write-back cache the kernel's request for it carries only its own
    # ctime, as after an unlink, and coffer cannot tell the two apart: there
    # the bits stay (docs/ARCHITECTURE.md, "Setuid bits").
    if [ "${2:-}" != writeback ]; then
        mk n1 6775; "$PY" -c 'import os,sys; os.chown(sys.argv[1], -1, -1)' "$d/n1"; out "chown(-1, -1) by root, 6775" n1
        mk n2 6775; as_nobody "$PY" -c 'import os,sys; os.chown(sys.argv[1], -1, -1)' "$d/n2"
        out "chown(-1, -1) by owner, 6775" n2
    fi
}

as_nobody test -x "$T" ||
    fatal "uid $NOBODY cannot reach $T: make every folder above it traversable (e.g. chmod 755 \$COFFER_TEST_TMP)"
for variant in writeback no_writeback_cache; do
    mkdir -p "$T/plain/$variant"
    probes "$T/plain/$variant" $variant >"$T/expected.$variant" 2>"$T/plain.err" ||
        fatal "the probes fail on a plain folder: $(cat "$T/plain.err")"
done
# The probes must show the rules, or they compare nothing.
grep -qx 'write by owner, 6775 -> 775' "$T/expected.writeback" &&
    grep -qx 'write by root, 4755 -> 4755' "$T/expected.writeback" &&
    grep -qx 'chown(-1, -1) by owner, 6775 -> 775' "$T/expected.no_writeback_cache" ||
    fatal "the plain folder does not drop setuid bits as Linux does: $(cat "$T"/expected.*)"

coffer_init || fatal "init failed"
for variant in writeback no_writeback_cache; do
    opts=(-o allow_other)
    [ "$variant" = no_writeback_cache ] && opts+=(-o no_writeback_cache)
    : >"$STATE/coffer.log" 2>/dev/null
    coffer_mount "${opts[@]}" || fatal "mount ($variant) failed"
    require_mounted
    mkdir -p "$MNT/$variant"
    probes "$MNT/$variant" $variant >"$T/got.$variant" 2>"$T/err.$variant"
    assert_file_eq "$T/expected.$variant" "$T/got.$variant" "$variant: every probe leaves the mode a plain folder shows"
    # Otherwise the kernel dropped the bits and this test proved nothing of coffer's.
    check "$variant: FUSE_HANDLE_KILLPRIV_V2 was negotiated" grep -q 'FUSE_HANDLE_KILLPRIV_V2' "$STATE/coffer.log"
    check "$variant: unmount" coffer_unmount
    coffer_mount "${opts[@]}" || fatal "remount ($variant) failed"
    (cd "$MNT/$variant" && for f in *; do echo "$f $(stat -c %a "$f")"; done) >"$T/after.$variant"
    (cd "$T/plain/$variant" && for f in *; do echo "$f $(stat -c %a "$f")"; done) >"$T/after.plain"
    assert_file_eq "$T/after.plain" "$T/after.$variant" "$variant: the stored modes after a remount"
    coffer_unmount || fatal "unmount ($variant) failed"
done
finish
