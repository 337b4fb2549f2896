#!/usr/bin/env bash
# The control socket cannot be spoofed (issue 14, part 3). Without
# XDG_RUNTIME_DIR the client looks for its daemon in /tmp/coffer-<uid>/, a
# name any local user can take first. Here uid 65534 takes it for a victim
# (uid VICTIM, which owns nothing else on the machine, so /tmp/coffer-VICTIM
# is ours to play with) and answers `coffer sync` with "published 42
# operations": the client must refuse with a clear message and a non-zero
# exit, at once, without printing what the fake sent. Then the other ways
# the socket's folder can be wrong (mode, symlink), a server of another uid
# behind a folder that looks right (SO_PEERCRED), a daemon of the right user
# that never answers (bounded wait), control characters in a reply (escaped),
# and the daemon refusing to serve from a folder another user made.
source "$(dirname "$0")/lib.sh"

use_nobody
VICTIM=64123
SOCKDIR=/tmp/coffer-$VICTIM
as_victim() { timeout 120 env -u XDG_RUNTIME_DIR setpriv --reuid=$VICTIM --regid=$VICTIM --clear-groups -- "$@"; }
FAKE_PIDS=()
FAKES=0
stop_fakes() {
    local p
    for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${FAKE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    FAKE_PIDS=()
}
# Our fake servers, by PID, and the victim's socket folder go with the test.
trap 'rc=$?; stop_fakes; rm -rf "$SOCKDIR"; (exit $rc); _cleanup' EXIT
rm -rf "$SOCKDIR"

as_nobody test -x "$COFFER" && as_nobody test -x "$T" ||
    fatal "uid $NOBODY cannot reach $COFFER or $T: make the folders above them traversable"

# Root's daemon keeps its real socket in a private runtime folder of its own.
export XDG_RUNTIME_DIR=$T/rootrun
mkdir -m 700 "$XDG_RUNTIME_DIR"

cat >"$T/fake_server.py" <<'PY'
# fake_server.py SOCKET MODE [MKDIR_MODE]: a pretend coffer daemon.
# MODE answer: "ok published 42 operations"; hang: accepts, never answers;
# escape: a reply full of terminal escape sequences. With MKDIR_MODE, makes
# the socket's folder first (octal), as an attacker would.
import os, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:
    d = os.path.dirname(path)
    os.mkdir(d)
    os.chmod(d, int(sys.argv[3], 8))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", flush=True)
s.settimeout(300)
held = []
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        sys.exit(0)
    if mode == "hang":
        held.append(c)
        continue
    c.settimeout(5)
    try:
        c.recv(256)
        if mode == "answer":
            c.sendall(b"ok published 42 operations, 0 objects\n")
        else:
            c.sendall(b"pending operations: \x1b[2J\x1b]0;owned\x07\r7\n"
                      b"ok published \x1b[31m42\xc2\x9b operations\n")
    except OSError:
        pass
    c.close()
PY
chmod 644 "$T/fake_server.py"

# start_fake AS_UID SOCKET MODE [MKDIR_MODE]: runs the fake as that uid,
# waits until it listens.
start_fake() {
    local uid=$1 out=$T/fake.$((++FAKES)); shift
    setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$PY" "$T/fake_server.py" "$@" \
        >"$out.out" 2>"$out.err" </dev/null &
    FAKE_PIDS+=("$!")
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q ready "$out.out" 2>/dev/null && return 0
        sleep 0.1
    done
    fatal "the fake server did not start: $(cat "$out.err")"
}
# victim_run CMD...: runs coffer CMD as the victim; sets OUT (stdout and
# stderr) and RC (124: it hung until the timeout).
victim_run() {
    OUT=$(timeout 100 env -u XDG_RUNTIME_DIR setpriv --reuid=$VICTIM --regid=$VICTIM --clear-groups -- \
        "$COFFER" "$@" </dev/null 2>&1)
    RC=$?
}
# refused WHAT REGEX: the last victim_run failed at once, said REGEX, and
# printed nothing the fake sent.
refused() {
    if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then pass "$1: refused (exit $RC)"
    else fail "$1: refused" "exit $RC (124: hung)" "$OUT"; fi
    assert_match "$2" "$OUT" "$1: the message says why"
    if printf '%s' "$OUT" | grep -q 'published 42'; then fail "$1: nothing of the fake's reply is printed" "$OUT"
    else pass "$1: nothing of the fake's reply is printed"; fi
}

# ---- a real mount the victim may look at (allow_other), whose socket is elsewhere
coffer_init || fatal "init"
coffer_mount -o allow_other || fatal "mount"
require_mounted
check "the real daemon answers its owner" coffer status "$MNT"
SOCK=$SOCKDIR/$("$PY" -c 'import hashlib,sys; print(hashlib.blake2b(sys.argv[1].encode(), digest_size=32).digest()[:8].hex())' "$MNT").sock

# ---- 1. uid 65534 made /tmp/coffer-VICTIM and answers there
start_fake $NOBODY "$SOCK" answer 777
victim_run sync "$MNT"
refused "sync through a folder of uid $NOBODY" "$SOCKDIR.*belongs to uid $NOBODY"
assert_match "rm -r|XDG_RUNTIME_DIR" "$OUT" "the message says how to fix it"
victim_run status "$MNT"
refused "status through a folder of uid $NOBODY" "belongs to uid $NOBODY"
victim_run unmount "$MNT"
refused "unmount through a folder of uid $NOBODY" "belongs to uid $NOBODY"
check "the real mount is still there" is_mounted "$MNT"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 2. the same folder with a fake that accepts and never answers: no hang
start_fake $NOBODY "$SOCK" hang 755
victim_run sync "$MNT"
refused "sync against a silent fake of uid $NOBODY" "belongs to uid $NOBODY"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 3. the victim's own folder, but open to others (someone could have planted the socket)
start_fake $VICTIM "$SOCK" answer 755
victim_run sync "$MNT"
refused "sync through the victim's folder of mode 0755" "mode is 0755"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 4. a symlink where the folder should be (to a private folder of the victim)
mkdir -m 700 "$T/vdir" && chown $VICTIM:$VICTIM "$T/vdir"
ln -s "$T/vdir" "$SOCKDIR" && chown -h $VICTIM:$VICTIM "$SOCKDIR"
start_fake $VICTIM "$T/vdir/$(basename "$SOCK")" answer
victim_run sync "$MNT"
refused "sync through a symlinked socket folder" "symbolic link"
stop_fakes
rm -f "$SOCKDIR"

# ---- 5. a folder that is right, holding a socket another uid listens on
mkdir -m 777 "$T/att"
start_fake $NOBODY "$T/att/s.sock" answer
mkdir -m 700 "$SOCKDIR" && chown $VICTIM:$VICTIM "$SOCKDIR"
mv "$T/att/s.sock" "$SOCK" && chown $VICTIM:$VICTIM "$SOCK"
victim_run sync "$MNT"
refused "sync to a server of uid $NOBODY (SO_PEERCRED)" "uid $NOBODY"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 6. the victim's own server: control characters in its reply are escaped
start_fake $VICTIM "$SOCK" escape 700
victim_run sync "$MNT"
assert_eq 0 "$RC" "a reply from the right user is accepted"
if printf '%s' "$OUT" | LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')"; then
    fail "no control character of the reply reaches the terminal" "$(printf '%s' "$OUT" | od -c | head)"
else
    pass "no control character of the reply reaches the terminal"
fi
printf '%s' "$OUT" | grep -q $'\xc2\x9b' && fail "a C1 control (U+009B) is escaped too" "$OUT" ||
    pass "a C1 control (U+009B) is escaped too"
assert_match '\\x1b\[31m42\\xc2\\x9b operations' "$OUT" "escaped as \\xNN"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 7. the victim's own server that never answers: the client gives up
# (status after 60 s of silence; sync and unmount, which may queue behind
# another client's publish, after 600 s: the unit tests cover that bound)
start_fake $VICTIM "$SOCK" hang 700
start=$(date +%s)
victim_run status "$MNT"
took=$(( $(date +%s) - start ))
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then pass "a silent daemon: the client gives up after ${took}s (exit $RC)"
else fail "a silent daemon: the client gives up" "exit $RC (124: hung)" "$OUT"; fi
assert_match "did not answer" "$OUT" "... and says the daemon did not answer"
stop_fakes
rm -rf "$SOCKDIR"

# ---- 8. the daemon refuses to serve from a folder another user made, or a symlink
coffer_unmount || fail "unmount"
mkdir -m 777 "$T/evil1"
as_nobody mkdir -m 777 "$T/evil1/coffer" || fatal "uid $NOBODY cannot make a folder"
STATE=$T/state1
out=$(XDG_RUNTIME_DIR=$T/evil1 timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null 2>&1)
rc=$?
echo "$STATE" >>"$T/.states"; _record_pid "$STATE"
if [ "$rc" -ne 0 ]; then pass "mount refuses a socket folder of uid $NOBODY (exit $rc)"
else fail "mount refuses a socket folder of uid $NOBODY" "$out"; fi
assert_match "belongs to uid $NOBODY" "$out" "... saying what is wrong"
assert_match "rm -r '$T/evil1/coffer'" "$out" "... and how to fix it"
check_fails "nothing mounted" is_mounted "$MNT"
mkdir -m 700 "$T/evil2" "$T/real"
ln -s "$T/real" "$T/evil2/coffer"
out=$(XDG_RUNTIME_DIR=$T/evil2 timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null 2>&1)
rc=$?
_record_pid "$STATE"
if [ "$rc" -ne 0 ]; then pass "mount refuses a symlinked socket folder (exit $rc)"
else fail "mount refuses a symlinked socket folder" "$out"; fi
assert_match "symbolic link" "$out" "... saying what is wrong"
check_fails "nothing mounted" is_mounted "$MNT"
# Its own folder, open to others: made private again, with a warning.
mkdir -m 755 "$T/loose" "$T/loose/coffer"
out=$(XDG_RUNTIME_DIR=$T/loose timeout 60 "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" </dev/null 2>&1)
rc=$?
_record_pid "$STATE"; echo "$MNT" >>"$T/.mounts"
assert_eq 0 "$rc" "mount with its own socket folder of mode 0755"
assert_match "open to other users" "$out" "... warns"
assert_eq 700 "$(stat -c %a "$T/loose/coffer")" "... and makes it 0700"
XDG_RUNTIME_DIR=$T/loose coffer_unmount || fail "unmount"
finish
