#!/usr/bin/env bash
# A signal at a password prompt puts the terminal back (issue 14, part 8).
# coffer turns echo off while it reads a password from /dev/tty; Ctrl-C
# (or SIGTERM, SIGHUP, Ctrl-\) there must not leave the user's terminal
# without echo. Each case runs coffer on a fresh pseudo-terminal whose
# slave side is its controlling terminal, waits for the prompt, checks that
# echo is off (else the case proves nothing), sends the signal, and checks
# that coffer ended with a non-zero status and the slave's ECHO flag is set.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "init"

cat >"$T/pty_case.py" <<'PY'
# pty_case.py SIGNAL ANSWERS PROMPT_COUNT -- COMMAND...
# SIGNAL: ctrl-c, ctrl-backslash (typed on the terminal), or TERM, HUP
# (sent with kill). ANSWERS: how many prompts to answer (with "pw") before
# the signal comes at the next one.
import fcntl, os, select, signal, subprocess, sys, termios, time

how, answers = sys.argv[1], int(sys.argv[2])
cmd = sys.argv[sys.argv.index("--") + 1:]
master, slave = os.openpty()

def become_tty_owner():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                     preexec_fn=become_tty_owner, close_fds=True)
seen = b""

def read_until(pred, timeout=30):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    return pred()

def echo_on():
    return bool(termios.tcgetattr(slave)[3] & termios.ECHO)

def prompts():
    return seen.lower().count(b"password")

for i in range(answers + 1):
    if not read_until(lambda: prompts() > i and not echo_on()):
        p.kill()
        sys.exit(f"FAIL no prompt with echo off (prompt {i + 1}); output: {seen!r}")
    if i < answers:
        time.sleep(0.2)
        os.write(master, b"pw\n")
time.sleep(0.2)  # coffer is blocked reading the terminal
if how == "ctrl-c":
    os.write(master, b"\x03")
elif how == "ctrl-backslash":
    os.write(master, b"\x1c")
else:
    os.kill(p.pid, getattr(signal, "SIG" + how))
try:
    rc = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit(f"FAIL coffer did not end after the signal; output: {seen!r}")
read_until(lambda: False, timeout=0.3)
problems = []
if rc == 0:
    problems.append("exit status 0")
if not echo_on():
    problems.append("ECHO is still off")
if problems:
    sys.exit(f"FAIL {', '.join(problems)} (status {rc}); output: {seen!r}")
print(f"OK status {rc}, echo on")
PY

# pty_case DESC SIGNAL ANSWERS COMMAND...
pty_case() {
    local desc=$1 how=$2 answers=$3 out rc
    shift 3
    out=$(timeout 120 python3 "$T/pty_case.py" "$how" "$answers" -- "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then pass "$desc: $out"; else fail "$desc" "$out"; fi
}

n=0
for how in ctrl-c TERM HUP ctrl-backslash; do
    n=$((n + 1))
    pty_case "mount, $how at the password prompt" "$how" 0 \
        "$COFFER" mount "$CLOUD" "$MNT" --state "$T/state$n"
    check_fails "mount, $how: nothing mounted" is_mounted "$MNT"
done
for how in ctrl-c TERM; do
    n=$((n + 1))
    pty_case "init, $how at the first prompt" "$how" 0 \
        "$COFFER" init "$T/new$n" --insecure-fast-kdf --recovery-key-file "$T/rk$n"
    pty_case "init, $how at the second prompt (repeat)" "$how" 1 \
        "$COFFER" init "$T/new$n.b" --insecure-fast-kdf --recovery-key-file "$T/rk$n.b"
done
pty_case "passwd, ctrl-c at the current password" ctrl-c 0 "$COFFER" passwd "$CLOUD"
finish
