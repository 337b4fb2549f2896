#!/usr/bin/env bash
# A private mount (no allow_other) made by a user who is not root: there
# the daemon checks permissions itself (no default_permissions; see
# fuse::SessionOptions::kernel_permissions and vfs/access.h). The same tree
# of root's and uid 65534's files and folders, with various modes, is made
# in a plain folder and (through a root mount with allow_other) in the
# vault; uid 65534 then mounts the vault on its own, and every probe runs
# as uid 65534 on both: each must give the errno Linux gives on the plain
# folder, which must be the one the table below expects.
# Also: -o no_default_permissions with allow_other is refused, and root's
# private mount still answers access(X_OK) by the execute bits.
source "$(dirname "$0")/lib.sh"

use_nobody
as_nobody test -x "$T" ||
    fatal "uid $NOBODY cannot reach $T: make every folder above it traversable (e.g. chmod 755 \$COFFER_TEST_TMP)"

# libfuse opens /dev/fuse itself before it would fall back to fusermount3;
# Debian makes it 0666, a container may not. Restored on exit.
FUSE_MODE=$(stat -c %a /dev/fuse)
if ! as_nobody sh -c 'exec 3<>/dev/fuse' 2>/dev/null; then
    chmod 666 /dev/fuse || fatal "uid $NOBODY cannot open /dev/fuse and it cannot be made so"
    _private_cleanup() {
        local rc=$?
        chmod "$FUSE_MODE" /dev/fuse
        (exit "$rc")
        _cleanup
    }
    trap _private_cleanup EXIT
    log "/dev/fuse made 0666 for this test (was $FUSE_MODE)"
fi

# make_tree DIR: as root.
make_tree() {
    local d=$1
    mkdir -p "$d" && cd "$d" || return 1
    printf x >rootfile; chmod 644 rootfile
    printf x >rootpriv; chmod 600 rootpriv
    printf x >rootrw; chmod 666 rootrw
    printf x >grpfile; chown 0:$NOBODY grpfile; chmod 060 grpfile
    printf x >othfile; chown 0:$NOBODY othfile; chmod 604 othfile
    printf x >mine; chown $NOBODY:$NOBODY mine; chmod 444 mine
    printf x >minezero; chown $NOBODY:$NOBODY minezero; chmod 000 minezero
    printf x >mine_rootgrp; chown $NOBODY:0 mine_rootgrp; chmod 755 mine_rootgrp
    printf '#!/bin/sh\necho ran\n' >rootexec; chmod 744 rootexec
    printf '#!/bin/sh\necho ran\n' >allexec; chmod 755 allexec
    mkdir d700 d711 d755 d777 d777b sticky mydir
    printf x >d700/f; printf x >d711/f; printf x >d755/f; printf x >d777/rootfile2
    mkdir d777/rootdir
    printf x >sticky/s
    chmod 700 d700; chmod 711 d711; chmod 755 d755; chmod 777 d777 d777b; chmod 1777 sticky
    chown $NOBODY:$NOBODY mydir; chmod 555 mydir
    cd - >/dev/null || return 1
}

# The probes, as uid 65534 in folder $1: "name result" lines (OK or an errno name).
PROBES=$T/probes.py
cat >"$PROBES" <<'PY'
import errno, os, subprocess, sys
os.chdir(sys.argv[1])
def probe(name, fn):
    try:
        r = fn()
        print(name, "OK" if r is None or r is True else r)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, str(e.errno)))
def rd(p): 
    with open(p, "rb") as f: return None if f.read() is not None else None
def wr(p, flags=os.O_WRONLY):
    fd = os.open(p, flags); os.close(fd)
def create(p): 
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644); os.close(fd)
def run(p):
    r = subprocess.run([p], capture_output=True)
    return "OK" if r.returncode == 0 else "EXIT%d" % r.returncode
def acc(p, m): return "yes" if os.access(p, m) else "no"
probe("read_rootfile", lambda: rd("rootfile"))
probe("write_rootfile", lambda: wr("rootfile"))
probe("trunc_path_rootfile", lambda: os.truncate("rootfile", 0))
probe("chmod_rootfile", lambda: os.chmod("rootfile", 0o666))
probe("chown_rootfile", lambda: os.chown("rootfile", 65534, -1))
probe("utime_explicit_rootrw", lambda: os.utime("rootrw", (1, 1)))
probe("touch_rootrw", lambda: os.utime("rootrw"))
probe("touch_rootfile", lambda: os.utime("rootfile"))
probe("write_rootrw", lambda: wr("rootrw"))
probe("read_rootpriv", lambda: rd("rootpriv"))
probe("link_rootpriv", lambda: os.link("rootpriv", "d777/hl_priv"))
probe("link_rootrw", lambda: os.link("rootrw", "d777/hl_rw"))
probe("rw_grpfile", lambda: wr("grpfile", os.O_RDWR))
probe("read_othfile", lambda: rd("othfile"))
probe("write_mine_0444", lambda: wr("mine"))
probe("read_minezero", lambda: rd("minezero"))
probe("chmod_mine", lambda: os.chmod("mine", 0o644))
probe("write_mine_0644", lambda: wr("mine"))
probe("chgrp_mine_own_group", lambda: os.chown("mine", -1, 65534))
probe("chgrp_mine_root", lambda: os.chown("mine", -1, 0))
probe("chmod_setgid_outside_group", lambda: os.chmod("mine_rootgrp", 0o2755))
probe("mode_after_setgid", lambda: oct(os.stat("mine_rootgrp").st_mode & 0o7777))
probe("setxattr_rootfile", lambda: os.setxattr("rootfile", "user.a", b"1"))
probe("setxattr_rootrw", lambda: os.setxattr("rootrw", "user.a", b"1"))
probe("getxattr_rootpriv", lambda: os.getxattr("rootpriv", "user.a"))
probe("stat_d700_f", lambda: os.stat("d700/f") and None)
probe("list_d700", lambda: os.listdir("d700") and None)
probe("stat_d711_f", lambda: os.stat("d711/f") and None)
probe("list_d711", lambda: os.listdir("d711") and None)
probe("create_d755", lambda: create("d755/new"))
probe("mkdir_d755", lambda: os.mkdir("d755/newd"))
probe("unlink_d755_f", lambda: os.unlink("d755/f"))
probe("symlink_d755", lambda: os.symlink("x", "d755/l"))
probe("create_d777", lambda: create("d777/new"))
probe("unlink_d777_rootfile2", lambda: os.unlink("d777/rootfile2"))
probe("rename_dir_cross_parent", lambda: os.rename("d777/rootdir", "d777b/rootdir"))
probe("rename_dir_same_parent", lambda: os.rename("d777/rootdir", "d777/rootdir2"))
probe("unlink_sticky_root", lambda: os.unlink("sticky/s"))
probe("rename_sticky_root", lambda: os.rename("sticky/s", "sticky/s2"))
probe("create_sticky_own", lambda: create("sticky/own"))
probe("unlink_sticky_own", lambda: os.unlink("sticky/own"))
probe("setxattr_sticky_dir", lambda: os.setxattr("sticky", "user.a", b"1"))
probe("create_mydir_0555", lambda: create("mydir/a"))
probe("chmod_mydir", lambda: os.chmod("mydir", 0o755))
probe("create_mydir_0755", lambda: create("mydir/a"))
probe("access_r_rootpriv", lambda: acc("rootpriv", os.R_OK))
probe("access_w_rootrw", lambda: acc("rootrw", os.W_OK))
probe("access_x_rootexec", lambda: acc("rootexec", os.X_OK))
probe("access_x_d700", lambda: acc("d700", os.X_OK))
probe("chdir_d700", lambda: os.chdir("d700"))
probe("exec_rootexec", lambda: run("./rootexec"))
probe("exec_allexec", lambda: run("./allexec"))
PY

EXPECTED="read_rootfile OK
write_rootfile EACCES
trunc_path_rootfile EACCES
chmod_rootfile EPERM
chown_rootfile EPERM
utime_explicit_rootrw EPERM
touch_rootrw OK
touch_rootfile EACCES
write_rootrw OK
read_rootpriv EACCES
link_rootpriv EPERM
link_rootrw OK
rw_grpfile OK
read_othfile EACCES
write_mine_0444 EACCES
read_minezero EACCES
chmod_mine OK
write_mine_0644 OK
chgrp_mine_own_group OK
chgrp_mine_root EPERM
chmod_setgid_outside_group OK
mode_after_setgid 0o755
setxattr_rootfile EACCES
setxattr_rootrw OK
getxattr_rootpriv EACCES
stat_d700_f EACCES
list_d700 EACCES
stat_d711_f OK
list_d711 EACCES
create_d755 EACCES
mkdir_d755 EACCES
unlink_d755_f EACCES
symlink_d755 EACCES
create_d777 OK
unlink_d777_rootfile2 OK
rename_dir_cross_parent EACCES
rename_dir_same_parent OK
unlink_sticky_root EPERM
rename_sticky_root EPERM
create_sticky_own OK
unlink_sticky_own OK
setxattr_sticky_dir EPERM
create_mydir_0555 EACCES
chmod_mydir OK
create_mydir_0755 OK
access_r_rootpriv no
access_w_rootrw yes
access_x_rootexec no
access_x_d700 no
chdir_d700 EACCES
exec_rootexec EACCES
exec_allexec OK"

# ---- the reference: a plain folder
PLAIN=$T/plain
make_tree "$PLAIN" || fatal "tree in the plain folder"
plain_out=$(as_nobody "$PY" "$PROBES" "$PLAIN" 2>&1)
assert_eq "$EXPECTED" "$plain_out" "the plain folder gives the expected errno for every probe (the reference holds)"

# ---- the same tree in the vault, made as root through a mount with allow_other
coffer_init || fatal "coffer init"
coffer_mount -o allow_other || fatal "root mount"
require_mounted
make_tree "$MNT/tree" || fatal "tree in the vault"
coffer_unmount || fatal "root unmount"

# ---- uid 65534 mounts it on its own: a new device (fresh state), its folders
chown -R $NOBODY:$NOBODY "$CLOUD"
chmod 644 "$PW"
NMNT=$T/nmnt NSTATE=$T/nstate
mkdir -p "$NMNT" "$NSTATE"
chown $NOBODY:$NOBODY "$NMNT" "$NSTATE"
echo "$NMNT" >>"$T/.mounts"
echo "$NSTATE" >>"$T/.states"
out=$(as_nobody "$COFFER" mount "$CLOUD" "$NMNT" --password-file "$PW" --state "$NSTATE" </dev/null 2>&1)
rc=$?
_record_pid "$NSTATE"
assert_eq 0 "$rc" "uid $NOBODY mounts the vault privately (exit status)" 
[ "$rc" -eq 0 ] || fatal "private mount: $out"
assert_match "fuse.coffer" "$(grep " $NMNT " /proc/self/mountinfo)" "the private mount is in the mount table"
check_fails "no default_permissions on the private mount (the daemon checks)" \
    grep -q "default_permissions" <(grep " $NMNT " /proc/self/mounts)
check_fails "root cannot enter uid $NOBODY's private mount" ls "$NMNT/tree"

coffer_out=$(as_nobody "$PY" "$PROBES" "$NMNT/tree" 2>&1)
assert_eq "$EXPECTED" "$coffer_out" "the private mount gives the plain folder's errno for every probe"
diff <(echo "$EXPECTED") <(echo "$coffer_out") | sed 's/^/    /' | head -20

out=$(as_nobody "$COFFER" unmount "$NMNT" </dev/null 2>&1)
assert_eq 0 "$?" "uid $NOBODY unmounts (exit status)" 
check_fails "not mounted after unmount" is_mounted "$NMNT"

# ---- what the probes changed was journaled under uid 65534's daemon:
# a root mount of the vault (another new device) sees it.
chown -R 0:0 "$CLOUD"
STATE=$T/state2
coffer_mount -o allow_other || fatal "root mount after the private one"
assert_eq "0o644" "$(python3 -c 'import os,sys; print(oct(os.stat(sys.argv[1]).st_mode & 0o7777))' "$MNT/tree/mine")" \
    "chmod of the private mount reached the vault"
check_fails "unlink of the private mount reached the vault" test -e "$MNT/tree/d777/rootfile2"
check "create of the private mount reached the vault" test -f "$MNT/tree/mydir/a"
check "the sticky folder's file stayed" test -f "$MNT/tree/sticky/s"
coffer_unmount || fail "root unmount"

# ---- -o no_default_permissions is refused with allow_other (other users
# would walk cached folders unchecked); root's private mount checks X_OK.
STATE=$T/state3
assert_fails_with "$EX_USAGE" "$COFFER" mount "$CLOUD" "$MNT" --password-file "$PW" --state "$STATE" \
    -o allow_other,no_default_permissions
assert_match "cannot go with allow_other" "$LAST_OUTPUT" "the refusal says why"
check_fails "nothing mounted after the refusal" is_mounted "$MNT"
coffer_mount || fatal "root private mount"
check_fails "root's private mount: no default_permissions" grep -q "default_permissions" <(grep " $MNT " /proc/self/mounts)
assert_eq "no" "$(python3 -c 'import os,sys; print("yes" if os.access(sys.argv[1], os.X_OK) else "no")' "$MNT/tree/rootfile")" \
    "access(X_OK) for root on a file with no execute bit"
assert_eq "yes" "$(python3 -c 'import os,sys; print("yes" if os.access(sys.argv[1], os.R_OK | os.W_OK) else "no")' "$MNT/tree/rootpriv")" \
    "access(R_OK|W_OK) for root on a 0600 file of root"
assert_eq "ran" "$("$MNT/tree/rootexec")" "root runs a 0744 script"
coffer_unmount || fail "root private unmount"
finish
