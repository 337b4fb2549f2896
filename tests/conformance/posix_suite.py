#!/usr/bin/env python3
"""coffer's own POSIX conformance suite (issue 3, part 1): a differential suite.

    posix_suite.py run DIR [--other DIR2] [--only SUBSTR] [--list]
        Runs every case in its own subfolder of DIR (which must be empty or
        absent) and prints one JSON line per case:
            {"case": NAME, "obs": {...}, "spec": [failed expectations], "checks": N}
        "obs" holds what was observed: return values or errno names, the
        relevant stat fields (type, mode, nlink, uid, gid, size; never inode
        numbers, block counts or directory sizes), and for times only
        relations ("later", "same", "earlier") against a value taken before
        the operation, or values the case set itself. "spec" lists each
        POSIX/Linux expectation that did not hold, so a case fails on its
        own, without any comparison ("checks" counts the expectations
        evaluated). DIR2 is a folder on another file
        system, for the EXDEV cases (they are skipped without it).
        Must run as root: cases act as uid/gid 65534 in forked children,
        so uid 65534 must be able to reach DIR.

    posix_suite.py compare REF.jsonl TEST.jsonl ALLOWLIST [--mode MODE]
        Compares TEST (the coffer mount) with REF (a plain folder) case by
        case; allow-list entries tagged [MODE] apply only with --mode MODE. Prints lines "PASS<TAB>what" / "FAIL<TAB>what<TAB>detail" for
        tests/integration/test_conformance.sh. A difference fails unless the
        allow-list names the case (or "case:key"); an allow-list entry that
        no longer differs fails too (the list stays honest); every spec
        failure on TEST fails, and so does every spec failure on REF (the
        expectations are meant to hold on a plain ext4 folder).

    posix_suite.py snapshot DIR
        Metadata of the tree below DIR (type, mode, uid, gid, nlink, size,
        rdev, mtime and ctime in ns, atime of non-directories, symlink
        targets, user xattrs, sha256 of regular files up to 64 MiB read with
        O_NOATIME), one line per entry, for a check across unmount/mount.

    posix_suite.py snapdiff BEFORE AFTER
        Compares two snapshots field by field (PASS/FAIL lines as above).

Python 3 standard library only; ctypes for renameat2, utimensat, fallocate,
statx and the byte-exact *xattr and readlink calls.
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import mmap
import os
import signal
import socket
import stat
import struct
import sys
import time

NOBODY = 65534
libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_INSERT_RANGE = 0x08, 0x10, 0x20
STATX_BTIME = 0x800
FICLONE = 0x40049409
SEEK_DATA, SEEK_HOLE = 3, 4
O_TMPFILE = getattr(os, "O_TMPFILE", 0o20200000)
O_NOATIME = getattr(os, "O_NOATIME", 0o1000000)

libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.readlink.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
libc.readlink.restype = ctypes.c_ssize_t
for _f in ("getxattr", "lgetxattr"):
    getattr(libc, _f).argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    getattr(libc, _f).restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t


class TS(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(rc):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def b(p):
    return os.fsencode(p)


def renameat2(a, c, flags):
    _check(libc.renameat2(AT_FDCWD, b(a), AT_FDCWD, b(c), flags))


def utimensat(p, atime, mtime, flags=0):
    """atime/mtime: (sec, nsec) pairs; nsec may be UTIME_NOW or UTIME_OMIT.
    p may be an int (an fd: futimens)."""
    ts = (TS * 2)(TS(*atime), TS(*mtime))
    if isinstance(p, int):
        _check(libc.futimens(p, ts))
    else:
        _check(libc.utimensat(AT_FDCWD, b(p), ts, flags))


def fallocate(fd, mode, off, length):
    _check(libc.fallocate(fd, mode, off, length))


def readlink_n(p, n):
    buf = ctypes.create_string_buffer(n + 8)
    got = _check(libc.readlink(b(p), buf, n))
    return buf.raw[:got]


def getxattr_n(p, name, n):
    """getxattr with a buffer of n bytes (0: size query); returns the length or the bytes."""
    if n == 0:
        return _check(libc.getxattr(b(p), name.encode(), None, 0))
    buf = ctypes.create_string_buffer(n)
    got = _check(libc.getxattr(b(p), name.encode(), buf, n))
    return buf.raw[:got]


def listxattr_n(p, n):
    if n == 0:
        return _check(libc.listxattr(b(p), None, 0))
    buf = ctypes.create_string_buffer(n)
    got = _check(libc.listxattr(b(p), buf, n))
    return buf.raw[:got]


def statx_btime(p):
    buf = ctypes.create_string_buffer(256)
    _check(libc.statx(AT_FDCWD, b(p), AT_SYMLINK_NOFOLLOW, STATX_BTIME, buf))
    mask = struct.unpack_from("I", buf.raw, 0)[0]
    return bool(mask & STATX_BTIME)


def errname(e):
    if e == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"   # errorcode says ENOTSUP (the same number on Linux)
    return errno.errorcode.get(e, "E%d" % e)


def outcome(fn, *a, **kw):
    """'OK' or the errno name of the OSError fn raised."""
    try:
        fn(*a, **kw)
        return "OK"
    except OSError as e:
        return errname(e.errno) if e.errno else "OSError " + str(e)


def mkfile(path, data=b"", mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def readf(path, flags=0):
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        out = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(out)
            out.append(chunk)
    finally:
        os.close(fd)


def open_close(path, flags, mode=0o644, dir_fd=None):
    os.close(os.open(path, flags, mode, dir_fd=dir_fd))


def pattern(n, seed=1):
    """n deterministic non-zero bytes (a 251-byte cycle)."""
    cycle = bytes(((i * 131 + seed * 17) % 251) + 1 for i in range(251))
    return (cycle * (n // 251 + 1))[:n]


def tick():
    """Lets the clock move past the coarse timestamp granularity (a jiffy),
    so an update made after this is visible as "later"."""
    time.sleep(0.02)


def times_of(p, follow=False):
    st = os.stat(p) if follow else os.lstat(p)
    return (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


def rel(after, before):
    return "later" if after > before else ("same" if after == before else "earlier")


TYPE_CHAR = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFIFO: "p",
             stat.S_IFSOCK: "s", stat.S_IFCHR: "c", stat.S_IFBLK: "b"}


def stat_fields(st):
    d = {"type": TYPE_CHAR.get(stat.S_IFMT(st.st_mode), "?"), "mode": "%04o" % stat.S_IMODE(st.st_mode),
         "nlink": st.st_nlink, "uid": st.st_uid, "gid": st.st_gid}
    if d["type"] != "d":
        d["size"] = st.st_size
    if d["type"] in ("c", "b"):
        d["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def as_user(fn, uid=NOBODY, gid=NOBODY):
    """Runs fn() in a forked child as uid/gid with no supplementary groups;
    returns 'OK' (or the errno name) and fn's JSON-able return value."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            signal.alarm(30)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            try:
                res = ["OK", fn()]
            except OSError as e:
                res = [errname(e.errno) if e.errno else "OSError " + str(e), None]
            except BaseException as e:  # noqa: BLE001 - reported as an observation
                res = ["EXCEPTION " + repr(e), None]
            os.write(w, json.dumps(res, default=repr).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks)) if chunks else ["NO RESULT", None]


def matches(v, exp):
    if isinstance(exp, tuple):
        return v in exp
    if callable(exp):
        return bool(exp(v))
    return v == exp


class Ctx:
    def __init__(self, root, name, other):
        self.d = os.path.join(root, name)
        os.mkdir(self.d, 0o755)
        os.chmod(self.d, 0o755)
        self.other = other
        self.obs = {}
        self.spec = []
        self.checks = 0     # expectations evaluated

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def rec(self, key, value, expect=None):
        if key in self.obs:
            raise RuntimeError("observation key used twice: " + key)
        self.obs[key] = value
        if expect is not None:
            self.checks += 1
        if expect is not None and not matches(value, expect):
            self.spec.append("%s: expected %s, got %s" % (key, _show(expect), json.dumps(value)))
        return value

    def call(self, key, fn, *a, expect=None, **kw):
        """Records 'OK' or the errno name of fn(*a, **kw)."""
        return self.rec(key, outcome(fn, *a, **kw), expect)

    def nobody(self, key, fn, expect=None):
        """Records fn()'s outcome as uid 65534; returns fn's value (or None)."""
        res, val = as_user(fn)
        self.rec(key, res, expect)
        return val

    def stat(self, key, path, expect=None, follow=False):
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError as e:
            return self.rec(key, errname(e.errno), expect and "present")
        d = stat_fields(st)
        self.obs[key] = d
        for k, v in (expect or {}).items():
            self.checks += 1
            if not matches(d.get(k), v):
                self.spec.append("%s.%s: expected %s, got %s" % (key, k, _show(v), json.dumps(d.get(k))))
        return d

    def times(self, key, path, before, follow=False, **expect):
        """Relations of path's (a, m, c) times to before: a/m/c = later/same/earlier."""
        after = times_of(path, follow)
        d = {"a": rel(after[0], before[0]), "m": rel(after[1], before[1]), "c": rel(after[2], before[2])}
        self.obs[key] = d
        for k, v in expect.items():
            self.checks += 1
            if not matches(d[k], v):
                self.spec.append("%s.%s: expected %s, got %s" % (key, k, _show(v), d[k]))
        return d


def _show(exp):
    if isinstance(exp, tuple):
        return " or ".join(json.dumps(x) for x in exp)
    if callable(exp):
        return getattr(exp, "__doc__", None) or "a condition"
    return json.dumps(exp)


CASES = []


def case(name, needs_other=False):
    def deco(fn):
        CASES.append((name, fn, needs_other))
        return fn
    return deco


def ptimes(c, key, path, before, **kw):
    """Parent-directory times after a change of its entries: mtime and ctime later."""
    kw.setdefault("m", "later")
    kw.setdefault("c", "later")
    return c.times(key, path, before, **kw)


# =====================================================================
# open / creat
# =====================================================================

@case("open.creat_new")
def _(c):
    tb = times_of(c.d)
    tick()
    c.call("create", open_close, c.p("f"), os.O_WRONLY | os.O_CREAT, 0o666, expect="OK")
    c.stat("stat", c.p("f"), {"type": "f", "mode": "0644", "nlink": 1, "uid": 0, "gid": 0, "size": 0})
    ptimes(c, "parent.times", c.d, tb)
    a, m, ct = times_of(c.p("f"))
    c.rec("new.a_eq_m_eq_c", a == m == ct, True)


@case("open.creat_mode_umask077")
def _(c):
    old = os.umask(0o077)
    try:
        open_close(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o666)
        os.mkdir(c.p("d"), 0o777)
    finally:
        os.umask(old)
    c.stat("file", c.p("f"), {"mode": "0600"})
    c.stat("dir", c.p("d"), {"mode": "0700"})


@case("open.creat_mode_bits_kept")
def _(c):
    old = os.umask(0)
    try:
        open_close(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o4751)
        open_close(c.p("g"), os.O_WRONLY | os.O_CREAT, 0o000)
    finally:
        os.umask(old)
    c.stat("suid", c.p("f"), {"mode": "4751"})
    c.stat("zero", c.p("g"), {"mode": "0000"})
    c.call("root.open_rdwr_mode0", open_close, c.p("g"), os.O_RDWR, expect="OK")


@case("open.creat_existing_keeps_content_and_mode")
def _(c):
    mkfile(c.p("f"), b"hello", 0o600)
    c.call("open_creat", open_close, c.p("f"), os.O_RDWR | os.O_CREAT, 0o666, expect="OK")
    c.stat("stat", c.p("f"), {"mode": "0600", "size": 5})
    c.rec("content", readf(c.p("f")).decode(), "hello")


@case("open.excl_existing_file")
def _(c):
    mkfile(c.p("f"), b"x")
    c.call("open", open_close, c.p("f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, expect="EEXIST")
    c.stat("stat", c.p("f"), {"size": 1})


@case("open.excl_existing_dir")
def _(c):
    os.mkdir(c.p("d"))
    c.call("open", open_close, c.p("d"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, expect="EEXIST")


@case("open.excl_new")
def _(c):
    c.call("open", open_close, c.p("f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, expect="OK")
    c.stat("stat", c.p("f"), {"type": "f", "mode": "0640", "size": 0})


@case("open.excl_dangling_symlink")
def _(c):
    os.symlink("target", c.p("l"))
    c.call("open", open_close, c.p("l"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, expect="EEXIST")
    c.rec("target_created", os.path.lexists(c.p("target")), False)


@case("open.creat_through_dangling_symlink")
def _(c):
    os.symlink("target", c.p("l"))
    c.call("open", open_close, c.p("l"), os.O_WRONLY | os.O_CREAT, expect="OK")
    c.stat("target", c.p("target"), {"type": "f"})
    c.stat("link", c.p("l"), {"type": "l"})


@case("open.excl_without_creat")
def _(c):
    mkfile(c.p("f"))
    c.call("open", open_close, c.p("f"), os.O_RDONLY | os.O_EXCL)


@case("open.trunc")
def _(c):
    mkfile(c.p("f"), pattern(10000))
    tb = times_of(c.p("f"))
    tick()
    c.call("open", open_close, c.p("f"), os.O_WRONLY | os.O_TRUNC, expect="OK")
    c.stat("stat", c.p("f"), {"size": 0})
    c.times("times", c.p("f"), tb, m="later", c="later")


@case("open.trunc_empty_file")
def _(c):
    mkfile(c.p("f"))
    tb = times_of(c.p("f"))
    tick()
    c.call("open", open_close, c.p("f"), os.O_WRONLY | os.O_TRUNC, expect="OK")
    # POSIX: O_TRUNC on an existing file marks mtime and ctime for update
    c.times("times", c.p("f"), tb, m="later", c="later")


@case("open.rdonly_trunc")
def _(c):
    mkfile(c.p("f"), b"abc")
    c.call("open", open_close, c.p("f"), os.O_RDONLY | os.O_TRUNC)
    c.stat("stat", c.p("f"))


@case("open.trunc_fifo_and_dir")
def _(c):
    os.mkfifo(c.p("p"))
    os.mkdir(c.p("d"))
    c.call("fifo", open_close, c.p("p"), os.O_RDONLY | os.O_NONBLOCK | os.O_TRUNC, expect="OK")
    c.call("dir", open_close, c.p("d"), os.O_RDONLY | os.O_TRUNC)


@case("open.directory_flag_on_file")
def _(c):
    mkfile(c.p("f"))
    c.call("open", open_close, c.p("f"), os.O_RDONLY | os.O_DIRECTORY, expect="ENOTDIR")
    c.call("open_dir", open_close, c.d, os.O_RDONLY | os.O_DIRECTORY, expect="OK")


@case("open.creat_directory_flag")
def _(c):
    c.call("open", open_close, c.p("new"), os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY)
    c.rec("created", os.path.lexists(c.p("new")))


@case("open.nofollow_symlink")
def _(c):
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    c.call("open", open_close, c.p("l"), os.O_RDONLY | os.O_NOFOLLOW, expect="ELOOP")
    c.call("open_path", open_close, c.p("l"), os.O_PATH | os.O_NOFOLLOW, expect="OK")
    c.call("open_file", open_close, c.p("f"), os.O_RDONLY | os.O_NOFOLLOW, expect="OK")


@case("open.nofollow_middle_component")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("d", "f"))
    os.symlink("d", c.p("ld"))
    # O_NOFOLLOW only concerns the last component
    c.call("open", open_close, c.p("ld", "f"), os.O_RDONLY | os.O_NOFOLLOW, expect="OK")


@case("open.dir_for_write")
def _(c):
    os.mkdir(c.p("d"))
    c.call("wronly", open_close, c.p("d"), os.O_WRONLY, expect="EISDIR")
    c.call("rdwr", open_close, c.p("d"), os.O_RDWR, expect="EISDIR")
    c.call("creat", open_close, c.p("d"), os.O_WRONLY | os.O_CREAT, expect="EISDIR")
    c.call("rdonly", open_close, c.p("d"), os.O_RDONLY, expect="OK")


@case("open.enoent")
def _(c):
    c.call("missing", open_close, c.p("nope"), os.O_RDONLY, expect="ENOENT")
    c.call("missing_parent", open_close, c.p("nodir", "f"), os.O_WRONLY | os.O_CREAT, expect="ENOENT")
    c.call("empty_path", open_close, "", os.O_RDONLY, expect="ENOENT")


@case("open.enotdir_component")
def _(c):
    mkfile(c.p("f"))
    c.call("lookup", open_close, c.p("f", "x"), os.O_RDONLY, expect="ENOTDIR")
    c.call("create", open_close, c.p("f", "x"), os.O_WRONLY | os.O_CREAT, expect="ENOTDIR")
    c.call("trailing_slash", open_close, c.p("f") + "/", os.O_RDONLY, expect="ENOTDIR")


@case("open.creat_trailing_slash")
def _(c):
    c.call("open", open_close, c.p("new") + "/", os.O_WRONLY | os.O_CREAT, expect="EISDIR")
    c.rec("created", os.path.lexists(c.p("new")), False)


@case("open.eloop")
def _(c):
    os.symlink("a", c.p("b"))
    os.symlink("b", c.p("a"))
    os.symlink("self", c.p("self"))
    c.call("loop2", open_close, c.p("a"), os.O_RDONLY, expect="ELOOP")
    c.call("self", open_close, c.p("self"), os.O_RDONLY, expect="ELOOP")
    c.call("self_creat", open_close, c.p("self"), os.O_WRONLY | os.O_CREAT, expect="ELOOP")
    c.call("component", open_close, c.p("a", "x"), os.O_RDONLY, expect="ELOOP")


@case("open.tmpfile")
def _(c):
    try:
        fd = os.open(c.d, O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as e:
        c.rec("open", errname(e.errno))
        return
    c.rec("open", "OK")
    try:
        os.write(fd, b"tmp")
        c.rec("fstat", stat_fields(os.fstat(fd)))
        c.call("linkat", lambda: _check(libc.linkat(AT_FDCWD, b"/proc/self/fd/%d" % fd, AT_FDCWD, b(c.p("named")),
                                                      AT_SYMLINK_FOLLOW)))
        c.stat("named", c.p("named"))
    finally:
        os.close(fd)


@case("open.direct")
def _(c):
    mkfile(c.p("f"), bytes(8192))
    try:
        fd = os.open(c.p("f"), os.O_RDWR | os.O_DIRECT)
    except OSError as e:
        c.rec("open", errname(e.errno))
        return
    c.rec("open", "OK")
    try:
        m = mmap.mmap(-1, 4096)
        m.write(pattern(4096))
        c.call("write", os.pwritev, fd, [m], 4096)
    finally:
        os.close(fd)
    c.rec("content_ok", readf(c.p("f"))[4096:] == pattern(4096))


@case("open.two_fds_coherent")
def _(c):
    mkfile(c.p("f"))
    fa = os.open(c.p("f"), os.O_WRONLY)
    fb = os.open(c.p("f"), os.O_RDONLY)
    try:
        os.write(fa, b"visible")
        c.rec("read_other_fd", os.pread(fb, 100, 0).decode(), "visible")
        c.rec("fstat_other_size", os.fstat(fb).st_size, 7)
    finally:
        os.close(fa)
        os.close(fb)


# =====================================================================
# read / write
# =====================================================================

@case("write.basic")
def _(c):
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        c.rec("write", os.write(fd, b"hello world"), 11)
        c.rec("offset", os.lseek(fd, 0, os.SEEK_CUR), 11)
        c.rec("read_at_eof", os.read(fd, 10).decode(), "")
        c.rec("pread", os.pread(fd, 5, 6).decode(), "world")
        c.rec("pread_past_eof", os.pread(fd, 5, 100).decode(), "")
    finally:
        os.close(fd)
    c.stat("stat", c.p("f"), {"size": 11})


@case("write.overwrite_middle")
def _(c):
    mkfile(c.p("f"), pattern(20000))
    fd = os.open(c.p("f"), os.O_WRONLY)
    os.pwrite(fd, b"X" * 5000, 7000)
    os.close(fd)
    exp = bytearray(pattern(20000))
    exp[7000:12000] = b"X" * 5000
    c.rec("content_ok", readf(c.p("f")) == bytes(exp), True)
    c.stat("stat", c.p("f"), {"size": 20000})


@case("write.pwrite_past_eof_zero_fills")
def _(c):
    mkfile(c.p("f"), b"abc")
    fd = os.open(c.p("f"), os.O_WRONLY)
    os.pwrite(fd, b"end", 100000)
    os.close(fd)
    data = readf(c.p("f"))
    c.rec("size", len(data), 100003)
    c.rec("hole_zero", data[3:100000] == bytes(99997), True)
    c.rec("ends", data[:3] + data[-3:] == b"abcend", True)


@case("write.large_offset")
def _(c):
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        c.call("pwrite", os.pwrite, fd, b"far", 1 << 40, expect="OK")
        c.rec("read_back", os.pread(fd, 3, 1 << 40).decode(), "far")
        c.rec("read_hole", os.pread(fd, 4, (1 << 40) - 4) == bytes(4), True)
    finally:
        os.close(fd)
    c.stat("stat", c.p("f"), {"size": (1 << 40) + 3})


@case("write.append_flag")
def _(c):
    mkfile(c.p("f"), b"start")
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_APPEND)
    fd2 = os.open(c.p("f"), os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"-one")
        os.write(fd2, b"-two")
        os.write(fd, b"-three")
        # Linux: pwrite on an O_APPEND fd appends whatever the offset
        os.pwrite(fd, b"-pw", 0)
    finally:
        os.close(fd)
        os.close(fd2)
    c.rec("content", readf(c.p("f")).decode(), "start-one-two-three-pw")


@case("write.zero_length")
def _(c):
    mkfile(c.p("f"), b"abc")
    tb = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_WRONLY)
    try:
        c.rec("write", os.write(fd, b""), 0)
    finally:
        os.close(fd)
    c.times("times", c.p("f"), tb)
    c.stat("stat", c.p("f"), {"size": 3})


@case("write.bad_fd_modes")
def _(c):
    mkfile(c.p("f"), b"abc")
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.call("write_rdonly", os.write, fd, b"x", expect="EBADF")
    os.close(fd)
    fd = os.open(c.p("f"), os.O_WRONLY)
    c.call("read_wronly", os.read, fd, 1, expect="EBADF")
    os.close(fd)
    fd = os.open(c.d, os.O_RDONLY | os.O_DIRECTORY)
    c.call("read_dir", os.read, fd, 1, expect="EISDIR")
    os.close(fd)


@case("write.big_sequential")
def _(c):
    data = pattern(3 * 1024 * 1024 + 17, 3)
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:off + 200000])
    os.close(fd)
    c.rec("content_ok", readf(c.p("f")) == data, True)
    c.stat("stat", c.p("f"), {"size": len(data)})


@case("write.times")
def _(c):
    mkfile(c.p("f"), b"abc")
    tb = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_WRONLY)
    os.write(fd, b"x")
    os.close(fd)
    c.times("times", c.p("f"), tb, m="later", c="later", a="same")


@case("write.pwrite_times")
def _(c):
    mkfile(c.p("f"), b"abc")
    fd = os.open(c.p("f"), os.O_WRONLY)
    tb = times_of(c.p("f"))
    tick()
    os.pwrite(fd, b"x", 50)
    c.times("times_fd_open", c.p("f"), tb, m="later", c="later", a="same")
    os.close(fd)


@case("write.mmap")
def _(c):
    mkfile(c.p("f"), bytes(8192))
    tb = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        m = mmap.mmap(fd, 8192)
        m[100:105] = b"mmap!"
        m.flush()
        m.close()
    finally:
        os.close(fd)
    c.times("times", c.p("f"), tb, m="later", c="later")
    c.rec("read_back", readf(c.p("f"))[100:105].decode(), "mmap!")


@case("write.fsync_fdatasync")
def _(c):
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x")
    c.call("fsync", os.fsync, fd, expect="OK")
    c.call("fdatasync", os.fdatasync, fd, expect="OK")
    os.close(fd)
    dfd = os.open(c.d, os.O_RDONLY | os.O_DIRECTORY)
    c.call("fsync_dir", os.fsync, dfd, expect="OK")
    os.close(dfd)


@case("write.o_sync")
def _(c):
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT | os.O_SYNC | os.O_DSYNC, 0o644)
    c.rec("write", os.write(fd, b"synced"), 6)
    os.close(fd)
    c.rec("content", readf(c.p("f")).decode(), "synced")


def seekv(fd, off, whence):
    """lseek's result, or the errno name."""
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return errname(e.errno)


def _seek_checks(c, fd):
    c.rec("size", os.fstat(fd).st_size, (1 << 20) + 4096)
    # a file system may report the whole file as data (no holes)
    c.rec("seek_data_0", seekv(fd, 0, SEEK_DATA), (0, 1 << 20))
    c.rec("seek_hole_0", seekv(fd, 0, SEEK_HOLE), (0, (1 << 20) + 4096))
    c.rec("seek_data_in_data", seekv(fd, (1 << 20) + 10, SEEK_DATA), (1 << 20) + 10)
    c.rec("seek_hole_in_data", seekv(fd, (1 << 20) + 10, SEEK_HOLE), (1 << 20) + 4096)
    c.rec("seek_data_eof", seekv(fd, (1 << 20) + 4096, SEEK_DATA), "ENXIO")
    c.rec("seek_hole_past_eof", seekv(fd, (1 << 20) + 5000, SEEK_HOLE), "ENXIO")
    c.rec("seek_end", seekv(fd, -6, os.SEEK_END), (1 << 20) + 4090)
    c.rec("seek_negative", seekv(fd, -1, os.SEEK_SET), "EINVAL")


@case("lseek.data_hole")
def _(c):
    # the data may still be cached (not yet with the file system): lseek
    # must see it all the same
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, pattern(4096), 1 << 20)
        _seek_checks(c, fd)
    finally:
        os.close(fd)


@case("lseek.data_hole_after_fsync")
def _(c):
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, pattern(4096), 1 << 20)
        os.fsync(fd)
        _seek_checks(c, fd)
    finally:
        os.close(fd)


@case("lseek.data_hole_after_close")
def _(c):
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, pattern(4096), 1 << 20)
    os.close(fd)
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        _seek_checks(c, fd)
    finally:
        os.close(fd)


@case("lseek.appended_unflushed")
def _(c):
    # 16000 bytes fsynced, 11000 more written through the still-open fd
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"a" * 16000)
        os.fsync(fd)
        os.write(fd, b"b" * 11000)
        c.rec("seek_hole_0", seekv(fd, 0, SEEK_HOLE), 27000)
        c.rec("seek_data_20000", seekv(fd, 20000, SEEK_DATA), 20000)
        c.rec("bytes_at_20000", os.pread(fd, 4, 20000).decode(), "bbbb")
    finally:
        os.close(fd)


@case("copy_file_range.same_fs")
def _(c):
    mkfile(c.p("src"), pattern(100000))
    mkfile(c.p("dst"))
    fi = os.open(c.p("src"), os.O_RDONLY)
    fo = os.open(c.p("dst"), os.O_WRONLY)
    try:
        n = 0
        while n < 100000:
            k = os.copy_file_range(fi, fo, 100000 - n)
            if k == 0:
                break
            n += k
        c.rec("copied", n, 100000)
    except OSError as e:
        c.rec("copied", errname(e.errno))
    finally:
        os.close(fi)
        os.close(fo)
    c.rec("content_ok", readf(c.p("dst")) == pattern(100000), True)


@case("ioctl.ficlone")
def _(c):
    mkfile(c.p("src"), pattern(4096))
    mkfile(c.p("dst"))
    fi = os.open(c.p("src"), os.O_RDONLY)
    fo = os.open(c.p("dst"), os.O_WRONLY)
    try:
        c.call("ficlone", fcntl.ioctl, fo, FICLONE, fi)
    finally:
        os.close(fi)
        os.close(fo)


@case("locks.posix_and_flock")
def _(c):
    mkfile(c.p("f"), b"lock")
    os.chmod(c.p("f"), 0o666)
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = c.p("f")

        def other_posix():
            f2 = os.open(path, os.O_RDWR)
            fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB)

        def other_flock():
            f2 = os.open(path, os.O_RDWR)
            fcntl.flock(f2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        c.nobody("posix_conflict", other_posix, expect=("EAGAIN", "EACCES"))
        c.nobody("flock_conflict", other_flock, expect="EAGAIN")
    finally:
        os.close(fd)
    c.nobody("posix_after_close", lambda: fcntl.lockf(os.open(path, os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB),
             expect="OK")


# =====================================================================
# truncate / ftruncate
# =====================================================================

def _truncate_down(c, use_fd):
    data = pattern(10000)
    mkfile(c.p("f"), data)
    tb = times_of(c.p("f"))
    tick()
    if use_fd:
        fd = os.open(c.p("f"), os.O_WRONLY)
        c.call("ftruncate", os.ftruncate, fd, 3000, expect="OK")
        os.close(fd)
    else:
        c.call("truncate", os.truncate, c.p("f"), 3000, expect="OK")
    c.times("times", c.p("f"), tb, m="later", c="later")
    c.stat("stat", c.p("f"), {"size": 3000})
    c.rec("prefix_kept", readf(c.p("f")) == data[:3000], True)


def _truncate_up(c, use_fd):
    mkfile(c.p("f"), b"abc")
    tb = times_of(c.p("f"))
    tick()
    if use_fd:
        fd = os.open(c.p("f"), os.O_RDWR)
        c.call("ftruncate", os.ftruncate, fd, 70000, expect="OK")
        os.close(fd)
    else:
        c.call("truncate", os.truncate, c.p("f"), 70000, expect="OK")
    c.times("times", c.p("f"), tb, m="later", c="later")
    c.stat("stat", c.p("f"), {"size": 70000})
    data = readf(c.p("f"))
    c.rec("zero_filled", data == b"abc" + bytes(69997), True)


@case("truncate.down")
def _(c):
    _truncate_down(c, False)


@case("ftruncate.down")
def _(c):
    _truncate_down(c, True)


@case("truncate.up")
def _(c):
    _truncate_up(c, False)


@case("ftruncate.up")
def _(c):
    _truncate_up(c, True)


@case("truncate.down_then_up_no_old_bytes")
def _(c):
    mkfile(c.p("f"), pattern(200000, 5))
    os.truncate(c.p("f"), 10)
    os.truncate(c.p("f"), 200000)
    data = readf(c.p("f"))
    c.rec("prefix", data[:10] == pattern(200000, 5)[:10], True)
    c.rec("rest_zero", data[10:] == bytes(199990), True)
    fd = os.open(c.p("f"), os.O_RDWR)
    os.ftruncate(fd, 5)
    os.pwrite(fd, b"Z", 150000)
    os.close(fd)
    data = readf(c.p("f"))
    c.rec("after_write_past_end", [len(data), data[5:150000] == bytes(149995)], [150001, True])


@case("truncate.same_size")
def _(c):
    mkfile(c.p("f"), b"abcdef")
    tb = times_of(c.p("f"))
    tick()
    c.call("truncate", os.truncate, c.p("f"), 6, expect="OK")
    c.times("times", c.p("f"), tb)


@case("ftruncate.same_size")
def _(c):
    mkfile(c.p("f"), b"abcdef")
    tb = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_WRONLY)
    c.call("ftruncate", os.ftruncate, fd, 6, expect="OK")
    os.close(fd)
    c.times("times", c.p("f"), tb)


@case("truncate.errors")
def _(c):
    mkfile(c.p("f"), b"abc")
    os.mkdir(c.p("d"))
    c.call("negative", os.truncate, c.p("f"), -1, expect="EINVAL")
    c.call("dir", os.truncate, c.p("d"), 0, expect="EISDIR")
    c.call("missing", os.truncate, c.p("nope"), 0, expect="ENOENT")
    c.call("enotdir", os.truncate, c.p("f", "x"), 0, expect="ENOTDIR")
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.call("ftruncate_rdonly", os.ftruncate, fd, 0, expect=("EINVAL", "EBADF"))
    os.close(fd)
    c.stat("unchanged", c.p("f"), {"size": 3})


@case("truncate.follows_symlink")
def _(c):
    mkfile(c.p("f"), b"abcdef")
    os.symlink("f", c.p("l"))
    c.call("truncate", os.truncate, c.p("l"), 2, expect="OK")
    c.stat("target", c.p("f"), {"size": 2})
    c.stat("link", c.p("l"), {"size": 1})


@case("truncate.huge")
def _(c):
    mkfile(c.p("f"))
    c.call("to_1TiB", os.truncate, c.p("f"), 1 << 40, expect="OK")
    c.stat("stat", c.p("f"), {"size": 1 << 40})
    c.call("to_max_off_t", os.truncate, c.p("f"), (1 << 63) - 1, expect=("EFBIG", "EINVAL", "OK"))
    c.call("back_to_0", os.truncate, c.p("f"), 0, expect="OK")


@case("truncate.open_fd_sees_new_size")
def _(c):
    mkfile(c.p("f"), pattern(5000))
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        os.truncate(c.p("f"), 100)
        c.rec("fstat_size", os.fstat(fd).st_size, 100)
        c.rec("read_past", os.pread(fd, 10, 200).decode(), "")
    finally:
        os.close(fd)


# =====================================================================
# mkdir / rmdir / readdir
# =====================================================================

@case("mkdir.basic")
def _(c):
    tb = times_of(c.d)
    nl = os.lstat(c.d).st_nlink
    tick()
    c.call("mkdir", os.mkdir, c.p("sub"), 0o777, expect="OK")
    c.stat("stat", c.p("sub"), {"type": "d", "mode": "0755", "nlink": 2, "uid": 0, "gid": 0})
    c.rec("parent.nlink_delta", os.lstat(c.d).st_nlink - nl, 1)
    ptimes(c, "parent.times", c.d, tb)
    c.rec("dotdot_is_parent", os.stat(c.p("sub", "..")).st_ino == os.stat(c.d).st_ino, True)


@case("mkdir.mode_bits")
def _(c):
    old = os.umask(0)
    try:
        os.mkdir(c.p("sticky"), 0o1777)
        os.mkdir(c.p("suid"), 0o4755)
        os.mkdir(c.p("zero"), 0)
    finally:
        os.umask(old)
    c.stat("sticky", c.p("sticky"), {"mode": "1777"})
    c.stat("suid", c.p("suid"))
    c.stat("zero", c.p("zero"), {"mode": "0000"})


@case("mkdir.errors")
def _(c):
    mkfile(c.p("f"))
    os.mkdir(c.p("d"))
    os.symlink("nowhere", c.p("dangling"))
    c.call("over_file", os.mkdir, c.p("f"), expect="EEXIST")
    c.call("over_dir", os.mkdir, c.p("d"), expect="EEXIST")
    c.call("over_dangling_symlink", os.mkdir, c.p("dangling"), expect="EEXIST")
    c.call("missing_parent", os.mkdir, c.p("no", "sub"), expect="ENOENT")
    c.call("parent_is_file", os.mkdir, c.p("f", "sub"), expect="ENOTDIR")
    c.call("trailing_slash", os.mkdir, c.p("new") + "/", expect="OK")
    c.call("dot", os.mkdir, c.p("d", "."), expect="EEXIST")


@case("mkdir.parent_nlink_many")
def _(c):
    for n in ("a", "b", "c"):
        os.mkdir(c.p(n))
    mkfile(c.p("f1"))
    mkfile(c.p("f2"))
    os.symlink("a", c.p("l"))
    c.stat("parent", c.d, {"nlink": 5})
    os.rmdir(c.p("b"))
    c.stat("after_rmdir", c.d, {"nlink": 4})


@case("mkdir.in_removed_dir")
def _(c):
    os.mkdir(c.p("gone"))
    dfd = os.open(c.p("gone"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(c.p("gone"))
        c.rec("mkdirat", outcome(lambda: os.mkdir("x", dir_fd=dfd)), "ENOENT")
        c.rec("createat", outcome(lambda: os.close(os.open("y", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dfd))),
              "ENOENT")
        c.rec("listdir", os.listdir(dfd), [])
        c.rec("fstat_nlink", os.fstat(dfd).st_nlink, 0)
    finally:
        os.close(dfd)


@case("rmdir.basic")
def _(c):
    os.mkdir(c.p("sub"))
    tb = times_of(c.d)
    nl = os.lstat(c.d).st_nlink
    tick()
    c.call("rmdir", os.rmdir, c.p("sub"), expect="OK")
    c.rec("gone", os.path.lexists(c.p("sub")), False)
    c.rec("parent.nlink_delta", os.lstat(c.d).st_nlink - nl, -1)
    ptimes(c, "parent.times", c.d, tb)


@case("rmdir.errors")
def _(c):
    os.mkdir(c.p("full"))
    mkfile(c.p("full", "x"))
    os.mkdir(c.p("empty"))
    mkfile(c.p("f"))
    os.symlink("empty", c.p("l"))
    c.call("not_empty", os.rmdir, c.p("full"), expect=("ENOTEMPTY", "EEXIST"))
    c.call("file", os.rmdir, c.p("f"), expect="ENOTDIR")
    c.call("symlink_to_dir", os.rmdir, c.p("l"), expect="ENOTDIR")
    c.call("dot", os.rmdir, c.p("empty", "."), expect="EINVAL")
    c.call("dotdot", os.rmdir, c.p("empty", ".."), expect="ENOTEMPTY")
    c.call("missing", os.rmdir, c.p("nope"), expect="ENOENT")
    c.call("through_file", os.rmdir, c.p("f", "x"), expect="ENOTDIR")
    c.call("trailing_slash", os.rmdir, c.p("empty") + "/", expect="OK")


@case("rmdir.only_hidden_entries")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("d", ".hidden"))
    c.call("rmdir", os.rmdir, c.p("d"), expect="ENOTEMPTY")
    os.unlink(c.p("d", ".hidden"))
    c.call("rmdir_after", os.rmdir, c.p("d"), expect="OK")


@case("readdir.entries_and_types")
def _(c):
    os.mkdir(c.p("dir"))
    mkfile(c.p("file"))
    os.symlink("file", c.p("link"))
    os.mkfifo(c.p("fifo"))
    os.mknod(c.p("chr"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    got = []
    with os.scandir(c.d) as it:
        for e in it:
            t = ("d" if e.is_dir(follow_symlinks=False) else "l" if e.is_symlink()
                 else "f" if e.is_file(follow_symlinks=False) else "other")
            got.append([e.name, t])
    c.rec("entries", sorted(got),
          [["chr", "other"], ["dir", "d"], ["fifo", "other"], ["file", "f"], ["link", "l"]])
    c.rec("dot_is_self", os.stat(c.p(".")).st_ino == os.stat(c.d).st_ino, True)


@case("readdir.many_entries")
def _(c):
    names = set("n%04d-%s" % (i, "x" * (i % 50)) for i in range(600))
    for n in names:
        open_close(c.p(n), os.O_WRONLY | os.O_CREAT)
    got = os.listdir(c.d)
    c.rec("count", len(got), 600)
    c.rec("same_set", set(got) == names, True)
    c.rec("no_duplicates", len(set(got)) == len(got), True)
    for n in sorted(names)[::2]:
        os.unlink(c.p(n))
    c.rec("after_half_unlinked", sorted(os.listdir(c.d)) == sorted(names)[1::2], True)


@case("readdir.dir_nlink_after_renames")
def _(c):
    for n in ("p1", "p2", "p1/a", "p1/b"):
        os.mkdir(c.p(n))
    os.rename(c.p("p1", "a"), c.p("p2", "a"))
    c.rec("nlinks", [os.lstat(c.p(n)).st_nlink for n in ("p1", "p2", ".")], [3, 3, 4])


# =====================================================================
# unlink
# =====================================================================

@case("unlink.basic")
def _(c):
    mkfile(c.p("f"), b"x")
    os.link(c.p("f"), c.p("g"))
    tb = times_of(c.d)
    tf = times_of(c.p("g"))
    tick()
    c.call("unlink", os.unlink, c.p("f"), expect="OK")
    c.rec("gone", os.path.lexists(c.p("f")), False)
    c.stat("other_link", c.p("g"), {"nlink": 1})
    ptimes(c, "parent.times", c.d, tb)
    c.times("other_link.times", c.p("g"), tf, c="later", m="same")


@case("unlink.errors")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("f"))
    c.call("dir", os.unlink, c.p("d"), expect=("EISDIR", "EPERM"))
    c.call("missing", os.unlink, c.p("nope"), expect="ENOENT")
    c.call("trailing_slash", os.unlink, c.p("f") + "/", expect="ENOTDIR")
    c.call("through_file", os.unlink, c.p("f", "x"), expect="ENOTDIR")
    dfd = os.open(c.d, os.O_RDONLY | os.O_DIRECTORY)
    c.call("unlinkat_removedir_file", os.rmdir, "f", dir_fd=dfd, expect="ENOTDIR")
    os.close(dfd)
    c.stat("dir_kept", c.p("d"), {"type": "d"})


@case("unlink.symlink_not_target")
def _(c):
    mkfile(c.p("f"), b"t")
    os.symlink("f", c.p("l"))
    os.symlink("missing", c.p("dangling"))
    c.call("unlink", os.unlink, c.p("l"), expect="OK")
    c.call("unlink_dangling", os.unlink, c.p("dangling"), expect="OK")
    c.stat("target", c.p("f"), {"type": "f", "size": 1})


@case("unlink.open_file_stays_usable")
def _(c):
    mkfile(c.p("f"), b"before")
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        os.unlink(c.p("f"))
        c.rec("fstat", stat_fields(os.fstat(fd)), {"type": "f", "mode": "0644", "nlink": 0, "uid": 0,
                                                    "gid": 0, "size": 6})
        os.pwrite(fd, b"-after", 6)
        c.rec("read", os.pread(fd, 100, 0).decode(), "before-after")
        c.call("fchmod", os.fchmod, fd, 0o600, expect="OK")
        c.rec("mode", "%04o" % stat.S_IMODE(os.fstat(fd).st_mode), "0600")
        c.call("ftruncate", os.ftruncate, fd, 3, expect="OK")
        c.rec("size", os.fstat(fd).st_size, 3)
        c.rec("name_gone", os.listdir(c.d), [])
    finally:
        os.close(fd)


@case("unlink.fifo_socket_device")
def _(c):
    os.mkfifo(c.p("p"))
    os.mknod(c.p("c"), stat.S_IFCHR | 0o600, os.makedev(1, 5))
    for n in ("p", "c"):
        c.call("unlink_" + n, os.unlink, c.p(n), expect="OK")
    c.rec("left", os.listdir(c.d), [])


# =====================================================================
# link
# =====================================================================

@case("link.basic")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("f"), b"data")
    tb = times_of(c.p("d"))
    tf = times_of(c.p("f"))
    tick()
    c.call("link", os.link, c.p("f"), c.p("d", "g"), follow_symlinks=False, expect="OK")
    c.stat("src", c.p("f"), {"nlink": 2})
    c.stat("dst", c.p("d", "g"), {"nlink": 2, "size": 4})
    c.rec("same_inode", os.lstat(c.p("f")).st_ino == os.lstat(c.p("d", "g")).st_ino, True)
    c.times("file.times", c.p("f"), tf, c="later", m="same")
    ptimes(c, "dst_parent.times", c.p("d"), tb)
    with open(c.p("d", "g"), "ab") as f:
        f.write(b"+more")
    c.rec("shared_content", readf(c.p("f")).decode(), "data+more")


@case("link.many_and_unlink")
def _(c):
    mkfile(c.p("f"))
    for i in range(10):
        os.link(c.p("f"), c.p("l%d" % i))
    c.stat("after_10", c.p("f"), {"nlink": 11})
    for i in range(0, 10, 2):
        os.unlink(c.p("l%d" % i))
    c.stat("after_unlink_5", c.p("l1"), {"nlink": 6})
    os.rename(c.p("l1"), c.p("renamed"))
    c.stat("after_rename", c.p("f"), {"nlink": 6})


@case("link.errors")
def _(c):
    mkfile(c.p("f"))
    mkfile(c.p("g"))
    os.mkdir(c.p("d"))
    lk = lambda a, z: os.link(a, z, follow_symlinks=False)  # noqa: E731
    c.call("exists", lk, c.p("f"), c.p("g"), expect="EEXIST")
    c.call("dir", lk, c.p("d"), c.p("dl"), expect="EPERM")
    c.call("missing_src", lk, c.p("nope"), c.p("x"), expect="ENOENT")
    c.call("missing_dst_parent", lk, c.p("f"), c.p("no", "x"), expect="ENOENT")
    c.call("dst_parent_file", lk, c.p("f"), c.p("g", "x"), expect="ENOTDIR")
    c.call("over_dir", lk, c.p("f"), c.p("d"), expect="EEXIST")
    c.call("dst_trailing_slash", lk, c.p("f"), c.p("new") + "/", expect=("ENOENT", "ENOTDIR", "EISDIR"))
    c.stat("src", c.p("f"), {"nlink": 1})


@case("link.symlink_follow_or_not")
def _(c):
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    c.call("link_nofollow", lambda: os.link(c.p("l"), c.p("hl"), follow_symlinks=False), expect="OK")
    c.stat("hard_link_to_symlink", c.p("hl"), {"type": "l", "nlink": 2})
    c.call("linkat_follow", lambda: _check(libc.linkat(AT_FDCWD, b(c.p("l")), AT_FDCWD, b(c.p("hf")),
                                                        AT_SYMLINK_FOLLOW)), expect="OK")
    c.stat("hard_link_to_target", c.p("hf"), {"type": "f", "nlink": 2})


@case("link.fifo_and_device")
def _(c):
    os.mkfifo(c.p("p"))
    os.mknod(c.p("c"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    c.call("fifo", lambda: os.link(c.p("p"), c.p("p2"), follow_symlinks=False), expect="OK")
    c.call("chr", lambda: os.link(c.p("c"), c.p("c2"), follow_symlinks=False), expect="OK")
    c.stat("p2", c.p("p2"), {"type": "p", "nlink": 2})
    c.stat("c2", c.p("c2"), {"type": "c", "nlink": 2, "rdev": "1:3"})


# =====================================================================
# symlink / readlink
# =====================================================================

@case("symlink.basic")
def _(c):
    tb = times_of(c.d)
    tick()
    c.call("symlink", os.symlink, "some/target", c.p("l"), expect="OK")
    c.stat("lstat", c.p("l"), {"type": "l", "mode": "0777", "nlink": 1, "size": len("some/target"), "uid": 0})
    c.rec("readlink", os.readlink(c.p("l")), "some/target")
    c.call("stat_dangling", os.stat, c.p("l"), expect="ENOENT")
    ptimes(c, "parent.times", c.d, tb)


@case("symlink.follow_in_path")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("d", "f"), b"abc")
    os.symlink("d", c.p("ld"))
    os.symlink(c.p("d", "f"), c.p("abs"))
    c.rec("read_through_dir_link", readf(c.p("ld", "f")).decode(), "abc")
    c.rec("read_absolute", readf(c.p("abs")).decode(), "abc")
    c.stat("stat_follows", c.p("ld"), {"type": "d"}, follow=True)
    c.rec("trailing_slash_dir", os.path.isdir(c.p("ld") + "/"), True)
    os.symlink("d/f", c.p("lf"))
    c.call("trailing_slash_file", os.stat, c.p("lf") + "/", expect="ENOTDIR")


@case("symlink.errors")
def _(c):
    mkfile(c.p("f"))
    os.mkdir(c.p("d"))
    c.call("exists_file", os.symlink, "x", c.p("f"), expect="EEXIST")
    c.call("exists_dir", os.symlink, "x", c.p("d"), expect="EEXIST")
    c.call("empty_target", os.symlink, "", c.p("e"), expect="ENOENT")
    c.call("missing_parent", os.symlink, "x", c.p("no", "l"), expect="ENOENT")
    c.call("readlink_file", os.readlink, c.p("f"), expect="EINVAL")
    c.call("readlink_dir", os.readlink, c.p("d"), expect="EINVAL")
    c.call("readlink_missing", os.readlink, c.p("nope"), expect="ENOENT")


@case("symlink.long_targets")
def _(c):
    t4095 = "t" * 4095
    c.call("target_4095", os.symlink, t4095, c.p("l4095"), expect="OK")
    c.rec("readlink_4095", os.readlink(c.p("l4095")) == t4095, True)
    c.stat("lstat_4095", c.p("l4095"), {"size": 4095})
    c.call("target_4096", os.symlink, "t" * 4096, c.p("l4096"), expect="ENAMETOOLONG")
    tpath = "/".join(["abcdefghij"] * 300)  # 3299 bytes, many components
    c.call("target_many_components", os.symlink, tpath, c.p("lmany"), expect="OK")
    c.rec("readlink_many", os.readlink(c.p("lmany")) == tpath, True)


@case("symlink.binary_target")
def _(c):
    t = bytes(range(1, 256)).replace(b"/", b"")
    c.call("symlink", os.symlink, t, b(c.p("lb")), expect="OK")
    c.rec("readlink_same", os.readlink(b(c.p("lb"))) == t, True)


@case("symlink.readlink_small_buffer")
def _(c):
    os.symlink("abcdefgh", c.p("l"))
    c.rec("readlink_3", readlink_n(c.p("l"), 3).decode(), "abc")
    c.rec("readlink_8", readlink_n(c.p("l"), 8).decode(), "abcdefgh")


@case("symlink.eloop_chain")
def _(c):
    mkfile(c.p("f"), b"end")
    prev = "f"
    for i in range(41):
        os.symlink(prev, c.p("s%02d" % i))
        prev = "s%02d" % i
    # s39 needs 40 link follows (Linux's limit), s40 needs 41
    c.rec("chain_40", outcome(readf, c.p("s39")), "OK")
    c.rec("chain_41", outcome(readf, c.p("s40")), "ELOOP")
    c.call("lstat_41", os.lstat, c.p("s40"), expect="OK")


@case("symlink.ownership_and_lchown")
def _(c):
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    c.call("lchown", os.lchown, c.p("l"), NOBODY, NOBODY, expect="OK")
    c.stat("link", c.p("l"), {"uid": NOBODY, "gid": NOBODY})
    c.stat("target", c.p("f"), {"uid": 0, "gid": 0})
    c.call("chown_follows", os.chown, c.p("l"), 1, 1, expect="OK")
    c.stat("target_after", c.p("f"), {"uid": 1, "gid": 1})
    c.call("chmod_follows", os.chmod, c.p("l"), 0o600, expect="OK")
    c.stat("target_mode", c.p("f"), {"mode": "0600"})
    c.stat("link_mode", c.p("l"), {"mode": "0777"})
    c.call("fchmodat_nofollow", lambda: _check(libc.fchmodat(AT_FDCWD, b(c.p("l")), 0o700, AT_SYMLINK_NOFOLLOW)))
    c.stat("link_mode_after", c.p("l"))


@case("symlink.utimensat_nofollow")
def _(c):
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    os.utime(c.p("f"), ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    c.call("utimensat", utimensat, c.p("l"), (100, 5), (200, 7), AT_SYMLINK_NOFOLLOW, expect="OK")
    st = os.lstat(c.p("l"))
    c.rec("link_times", [st.st_atime_ns, st.st_mtime_ns], [100 * 10**9 + 5, 200 * 10**9 + 7])
    c.rec("target_mtime", os.stat(c.p("f")).st_mtime_ns, 1_000_000_000_000_000_000)


# =====================================================================
# rename
# =====================================================================

@case("rename.file_new_name")
def _(c):
    mkfile(c.p("a"), b"A")
    c.call("rename", os.rename, c.p("a"), c.p("b"), expect="OK")
    c.rec("names", sorted(os.listdir(c.d)), ["b"])
    c.rec("content", readf(c.p("b")).decode(), "A")


@case("rename.over_existing_file")
def _(c):
    mkfile(c.p("a"), b"A")
    mkfile(c.p("b"), b"B")
    fd = os.open(c.p("b"), os.O_RDONLY)
    try:
        tv = times_of(c.p("b"))
        tick()
        c.call("rename", os.rename, c.p("a"), c.p("b"), expect="OK")
        c.rec("content", readf(c.p("b")).decode(), "A")
        c.rec("names", sorted(os.listdir(c.d)), ["b"])
        c.rec("victim_nlink", os.fstat(fd).st_nlink, 0)
        c.rec("victim_readable", os.pread(fd, 10, 0).decode(), "B")
        st = os.fstat(fd)
        c.rec("victim_ctime", rel(st.st_ctime_ns, tv[2]))
    finally:
        os.close(fd)


@case("rename.over_hardlinked_file")
def _(c):
    mkfile(c.p("a"), b"A")
    mkfile(c.p("b"), b"B")
    os.link(c.p("b"), c.p("b2"))
    c.call("rename", os.rename, c.p("a"), c.p("b"), expect="OK")
    c.stat("other_name", c.p("b2"), {"nlink": 1, "size": 1})
    c.stat("new", c.p("b"), {"nlink": 1})


@case("rename.same_inode_hardlinks")
def _(c):
    mkfile(c.p("a"), b"A")
    os.link(c.p("a"), c.p("b"))
    c.call("rename", os.rename, c.p("a"), c.p("b"), expect="OK")
    # POSIX: same file -> success, nothing else happens
    c.rec("names", sorted(os.listdir(c.d)), ["a", "b"])
    c.stat("nlink", c.p("a"), {"nlink": 2})


@case("rename.to_itself")
def _(c):
    mkfile(c.p("a"))
    os.mkdir(c.p("d"))
    c.call("file", os.rename, c.p("a"), c.p("a"), expect="OK")
    c.call("dir", os.rename, c.p("d"), c.p("d"), expect="OK")
    c.rec("names", sorted(os.listdir(c.d)), ["a", "d"])


@case("rename.dir_over_empty_dir")
def _(c):
    os.mkdir(c.p("p1"))
    os.mkdir(c.p("p2"))
    os.mkdir(c.p("p1", "src"))
    mkfile(c.p("p1", "src", "inside"))
    os.mkdir(c.p("p2", "dst"))
    c.call("rename", os.rename, c.p("p1", "src"), c.p("p2", "dst"), expect="OK")
    c.rec("moved", os.listdir(c.p("p2", "dst")), ["inside"])
    c.rec("nlinks_p1_p2", [os.lstat(c.p("p1")).st_nlink, os.lstat(c.p("p2")).st_nlink], [2, 3])
    c.rec("dotdot", os.stat(c.p("p2", "dst", "..")).st_ino == os.stat(c.p("p2")).st_ino, True)
    c.stat("moved_dir", c.p("p2", "dst"), {"nlink": 2})


@case("rename.dir_over_nonempty_dir")
def _(c):
    os.mkdir(c.p("a"))
    os.mkdir(c.p("b"))
    mkfile(c.p("b", "x"))
    c.call("rename", os.rename, c.p("a"), c.p("b"), expect=("ENOTEMPTY", "EEXIST"))
    c.rec("both_kept", sorted(os.listdir(c.d)), ["a", "b"])
    c.rec("b_content", os.listdir(c.p("b")), ["x"])


@case("rename.dir_over_file")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("f"))
    c.call("rename", os.rename, c.p("d"), c.p("f"), expect="ENOTDIR")
    c.stat("file_kept", c.p("f"), {"type": "f"})


@case("rename.file_over_dir")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("f"))
    c.call("rename", os.rename, c.p("f"), c.p("d"), expect="EISDIR")
    c.call("rename_empty_dir_trailing", os.rename, c.p("f"), c.p("d") + "/", expect=("EISDIR", "ENOTDIR"))
    c.stat("dir_kept", c.p("d"), {"type": "d"})


@case("rename.into_own_subtree")
def _(c):
    os.makedirs(c.p("a", "b", "c"))
    c.call("child", os.rename, c.p("a"), c.p("a", "x"), expect="EINVAL")
    c.call("grandchild", os.rename, c.p("a"), c.p("a", "b", "c", "x"), expect="EINVAL")
    c.call("over_own_descendant", os.rename, c.p("a"), c.p("a", "b", "c"), expect="EINVAL")
    c.call("ancestor_over_nonempty", os.rename, c.p("a", "b"), c.p("a"), expect="ENOTEMPTY")
    c.rec("tree_kept", os.path.isdir(c.p("a", "b", "c")), True)


@case("rename.dot_and_dotdot")
def _(c):
    os.makedirs(c.p("a", "b"))
    c.call("src_dot", os.rename, c.p("a", "."), c.p("x"), expect=("EBUSY", "EINVAL"))
    c.call("src_dotdot", os.rename, c.p("a", "b", ".."), c.p("x"), expect=("EBUSY", "EINVAL"))
    c.call("dst_dot", os.rename, c.p("a", "b"), c.p("a", "."), expect=("EBUSY", "EINVAL", "EEXIST"))


@case("rename.errors")
def _(c):
    mkfile(c.p("f"))
    c.call("missing_src", os.rename, c.p("nope"), c.p("x"), expect="ENOENT")
    c.call("missing_dst_parent", os.rename, c.p("f"), c.p("no", "x"), expect="ENOENT")
    c.call("dst_parent_file", os.rename, c.p("f"), c.p("f", "x"), expect="ENOTDIR")
    c.call("src_trailing_slash", os.rename, c.p("f") + "/", c.p("x"), expect="ENOTDIR")
    c.call("dst_trailing_slash", os.rename, c.p("f"), c.p("x") + "/", expect="ENOTDIR")
    c.rec("kept", os.listdir(c.d), ["f"])


@case("rename.symlink_itself")
def _(c):
    os.mkdir(c.p("d"))
    os.symlink("d", c.p("l"))
    c.call("rename", os.rename, c.p("l"), c.p("l2"), expect="OK")
    c.stat("l2", c.p("l2"), {"type": "l"})
    c.stat("dir", c.p("d"), {"type": "d"})
    c.call("dir_over_symlink", os.rename, c.p("d"), c.p("l2"), expect="ENOTDIR")


@case("rename.cross_dir_times")
def _(c):
    os.mkdir(c.p("p1"))
    os.mkdir(c.p("p2"))
    mkfile(c.p("p1", "f"), b"x")
    t1, t2, tf = times_of(c.p("p1")), times_of(c.p("p2")), times_of(c.p("p1", "f"))
    tick()
    c.call("rename", os.rename, c.p("p1", "f"), c.p("p2", "f"), expect="OK")
    ptimes(c, "src_parent.times", c.p("p1"), t1)
    ptimes(c, "dst_parent.times", c.p("p2"), t2)
    c.times("file.times", c.p("p2", "f"), tf, m="same")


@case("rename.same_dir_times")
def _(c):
    mkfile(c.p("f"), b"x")
    tp, tf = times_of(c.d), times_of(c.p("f"))
    tick()
    os.rename(c.p("f"), c.p("g"))
    ptimes(c, "parent.times", c.d, tp)
    c.times("file.times", c.p("g"), tf, m="same")


@case("rename.dir_cross_parent")
def _(c):
    os.mkdir(c.p("p1"))
    os.mkdir(c.p("p2"))
    os.mkdir(c.p("p1", "d"))
    mkfile(c.p("p1", "d", "x"))
    t1, t2, td = times_of(c.p("p1")), times_of(c.p("p2")), times_of(c.p("p1", "d"))
    tick()
    c.call("rename", os.rename, c.p("p1", "d"), c.p("p2", "d"), expect="OK")
    c.rec("nlinks_p1_p2", [os.lstat(c.p("p1")).st_nlink, os.lstat(c.p("p2")).st_nlink], [2, 3])
    c.rec("dotdot", os.stat(c.p("p2", "d", "..")).st_ino == os.stat(c.p("p2")).st_ino, True)
    ptimes(c, "src_parent.times", c.p("p1"), t1)
    ptimes(c, "dst_parent.times", c.p("p2"), t2)
    c.times("moved_dir.times", c.p("p2", "d"), td)


@case("rename.noreplace")
def _(c):
    mkfile(c.p("a"), b"A")
    mkfile(c.p("b"), b"B")
    os.mkdir(c.p("d"))
    c.call("existing", renameat2, c.p("a"), c.p("b"), RENAME_NOREPLACE, expect="EEXIST")
    c.call("existing_dir", renameat2, c.p("a"), c.p("d"), RENAME_NOREPLACE, expect="EEXIST")
    c.rec("unchanged", readf(c.p("a")).decode() + readf(c.p("b")).decode(), "AB")
    c.call("new", renameat2, c.p("a"), c.p("c"), RENAME_NOREPLACE, expect="OK")
    c.rec("names", sorted(os.listdir(c.d)), ["b", "c", "d"])
    c.call("with_exchange", renameat2, c.p("b"), c.p("c"), RENAME_NOREPLACE | RENAME_EXCHANGE, expect="EINVAL")
    c.call("bad_flag", renameat2, c.p("b"), c.p("z"), 0x80, expect="EINVAL")


@case("rename.exchange_files")
def _(c):
    mkfile(c.p("a"), b"A")
    mkfile(c.p("b"), b"BB")
    ta, tb_, tp = times_of(c.p("a")), times_of(c.p("b")), times_of(c.d)
    tick()
    c.call("exchange", renameat2, c.p("a"), c.p("b"), RENAME_EXCHANGE, expect="OK")
    ptimes(c, "parent.times", c.d, tp)
    # the inode now named b is the old a
    c.times("old_a.times", c.p("b"), ta, m="same")
    c.times("old_b.times", c.p("a"), tb_, m="same")
    c.rec("contents", [readf(c.p("a")).decode(), readf(c.p("b")).decode()], ["BB", "A"])


@case("rename.exchange_file_dir_cross_parent")
def _(c):
    os.mkdir(c.p("p1"))
    os.mkdir(c.p("p2"))
    mkfile(c.p("p1", "f"), b"file")
    os.mkdir(c.p("p2", "d"))
    mkfile(c.p("p2", "d", "inside"))
    t1, t2 = times_of(c.p("p1")), times_of(c.p("p2"))
    tick()
    c.call("exchange", renameat2, c.p("p1", "f"), c.p("p2", "d"), RENAME_EXCHANGE, expect="OK")
    c.stat("p1_f", c.p("p1", "f"), {"type": "d"})
    c.stat("p2_d", c.p("p2", "d"), {"type": "f", "size": 4})
    c.rec("inside", os.listdir(c.p("p1", "f")), ["inside"])
    c.rec("nlinks_p1_p2", [os.lstat(c.p("p1")).st_nlink, os.lstat(c.p("p2")).st_nlink], [3, 2])
    c.rec("dotdot", os.stat(c.p("p1", "f", "..")).st_ino == os.stat(c.p("p1")).st_ino, True)
    ptimes(c, "p1.times", c.p("p1"), t1)
    ptimes(c, "p2.times", c.p("p2"), t2)


@case("rename.exchange_dirs")
def _(c):
    os.makedirs(c.p("a", "a1"))
    os.makedirs(c.p("b", "b1"))
    c.call("exchange", renameat2, c.p("a"), c.p("b"), RENAME_EXCHANGE, expect="OK")
    c.rec("contents", [os.listdir(c.p("a")), os.listdir(c.p("b"))], [["b1"], ["a1"]])
    c.call("into_own_subtree", renameat2, c.p("a"), c.p("a", "b1"), RENAME_EXCHANGE, expect="EINVAL")
    c.call("with_ancestor", renameat2, c.p("a", "b1"), c.p("a"), RENAME_EXCHANGE, expect=("EINVAL", "ENOTEMPTY"))


@case("rename.exchange_errors")
def _(c):
    mkfile(c.p("a"))
    c.call("missing_dst", renameat2, c.p("a"), c.p("nope"), RENAME_EXCHANGE, expect="ENOENT")
    c.call("missing_src", renameat2, c.p("nope"), c.p("a"), RENAME_EXCHANGE, expect="ENOENT")
    c.call("same", renameat2, c.p("a"), c.p("a"), RENAME_EXCHANGE, expect="OK")
    c.call("with_whiteout", renameat2, c.p("a"), c.p("a"), RENAME_EXCHANGE | RENAME_WHITEOUT, expect="EINVAL")


@case("rename.whiteout")
def _(c):
    mkfile(c.p("a"), b"A")
    c.call("whiteout", renameat2, c.p("a"), c.p("b"), RENAME_WHITEOUT)
    if os.path.lexists(c.p("a")):
        c.stat("left_at_src", c.p("a"))


@case("rename.open_fd_follows_file")
def _(c):
    mkfile(c.p("a"), b"content")
    fd = os.open(c.p("a"), os.O_RDWR)
    try:
        os.mkdir(c.p("d"))
        os.rename(c.p("a"), c.p("d", "moved"))
        os.pwrite(fd, b"C", 0)
        c.rec("read_by_new_name", readf(c.p("d", "moved")).decode(), "Content")
    finally:
        os.close(fd)


# =====================================================================
# name lengths
# =====================================================================

N255, N256 = "a" * 255, "a" * 256


@case("names.255_and_256")
def _(c):
    mkfile(c.p("src"))
    os.mkdir(c.p("srcdir"))
    lk = lambda a, z: os.link(a, z, follow_symlinks=False)  # noqa: E731
    c.call("create_255", open_close, c.p(N255), os.O_WRONLY | os.O_CREAT, expect="OK")
    c.call("create_256", open_close, c.p(N256), os.O_WRONLY | os.O_CREAT, expect="ENAMETOOLONG")
    c.call("stat_255", os.lstat, c.p(N255), expect="OK")
    c.call("stat_256", os.lstat, c.p(N256), expect="ENAMETOOLONG")
    c.rec("listed", N255 in os.listdir(c.d), True)
    os.unlink(c.p(N255))
    c.call("mkdir_255", os.mkdir, c.p("d" * 255), expect="OK")
    c.call("mkdir_256", os.mkdir, c.p("d" * 256), expect="ENAMETOOLONG")
    c.call("rename_to_255", os.rename, c.p("src"), c.p("r" * 255), expect="OK")
    c.call("rename_to_256", os.rename, c.p("r" * 255), c.p("r" * 256), expect="ENAMETOOLONG")
    c.call("rename_from_256", os.rename, c.p("x" * 256), c.p("y"), expect="ENAMETOOLONG")
    c.call("link_255", lk, c.p("r" * 255), c.p("l" * 255), expect="OK")
    c.call("link_256", lk, c.p("r" * 255), c.p("l" * 256), expect="ENAMETOOLONG")
    c.call("symlink_255", os.symlink, "r" * 255, c.p("s" * 255), expect="OK")
    c.call("symlink_256", os.symlink, "r" * 255, c.p("s" * 256), expect="ENAMETOOLONG")
    c.rec("follow_255_symlink", outcome(os.stat, c.p("s" * 255)), "OK")
    c.call("mknod_255", os.mkfifo, c.p("p" * 255), expect="OK")
    c.call("mknod_256", os.mkfifo, c.p("p" * 256), expect="ENAMETOOLONG")
    c.call("unlink_256", os.unlink, c.p("r" * 256), expect="ENAMETOOLONG")
    c.call("rmdir_256", os.rmdir, c.p("d" * 256), expect="ENAMETOOLONG")
    c.call("rename_dir_255", os.rename, c.p("srcdir"), c.p("D" * 255), expect="OK")
    c.rec("entries", len(os.listdir(c.d)), 6)


@case("names.multibyte_255")
def _(c):
    ok = "é" * 127 + "a"   # 255 bytes in UTF-8
    bad = "é" * 128        # 256 bytes
    c.call("create_255_bytes", open_close, c.p(ok), os.O_WRONLY | os.O_CREAT, expect="OK")
    c.call("create_256_bytes", open_close, c.p(bad), os.O_WRONLY | os.O_CREAT, expect="ENAMETOOLONG")
    c.rec("listed", os.listdir(c.d), [ok])


@case("names.any_byte")
def _(c):
    names = [bytes([i]) + b"-x" for i in range(1, 256) if i != ord("/")]
    names += [b"..." , b" ", b"-", b"\xff\xfe", b"a\nb", b".hidden"]
    bad = 0
    for n in names:
        try:
            open_close(os.path.join(b(c.d), n), os.O_WRONLY | os.O_CREAT)
        except OSError:
            bad += 1
    c.rec("create_failures", bad, 0)
    c.rec("all_listed", sorted(os.listdir(b(c.d))) == sorted(names), True)


@case("names.path_max")
def _(c):
    # a relative path of more than PATH_MAX (4096) bytes, built with dir fds
    fds = [os.open(c.d, os.O_RDONLY | os.O_DIRECTORY)]
    names = ["%02d" % i + "d" * 198 for i in range(21)]
    try:
        for n in names:
            os.mkdir(n, dir_fd=fds[-1])
            fds.append(os.open(n, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        rel = "/".join(names)
        c.rec("rel_len_over_4096", len(rel) > 4096, True)
        c.rec("stat_long_path", outcome(lambda: os.stat(rel, dir_fd=fds[0])), "ENAMETOOLONG")
        c.rec("stat_4000_bytes", outcome(lambda: os.stat("/".join(names[:19]), dir_fd=fds[0])), "OK")
        c.rec("create_at_depth", outcome(lambda: open_close("f", os.O_WRONLY | os.O_CREAT, dir_fd=fds[-1])), "OK")
        os.unlink("f", dir_fd=fds[-1])
        for i in range(len(names) - 1, -1, -1):
            os.close(fds.pop())
            os.rmdir(names[i], dir_fd=fds[-1])
        c.rec("removed", os.listdir(c.d), [])
    finally:
        for fd in fds:
            os.close(fd)


@case("names.empty_and_dots")
def _(c):
    c.call("create_dot", open_close, c.p("."), os.O_WRONLY | os.O_CREAT, expect="EISDIR")
    c.call("create_dotdot", open_close, c.p(".."), os.O_WRONLY | os.O_CREAT, expect="EISDIR")
    c.call("mkdir_dotdot", os.mkdir, c.p(".."), expect="EEXIST")
    c.call("unlink_dot", os.unlink, c.p("."), expect="EISDIR")
    c.call("link_to_dot", lambda: os.link(c.p("x"), c.p("."), follow_symlinks=False), expect="ENOENT")


# =====================================================================
# chmod / chown
# =====================================================================

@case("chmod.basic")
def _(c):
    mkfile(c.p("f"), b"x", 0o644)
    tf = times_of(c.p("f"))
    tick()
    c.call("chmod", os.chmod, c.p("f"), 0o600, expect="OK")
    c.stat("stat", c.p("f"), {"mode": "0600"})
    c.times("times", c.p("f"), tf, c="later", m="same", a="same")


@case("chmod.all_bits")
def _(c):
    mkfile(c.p("f"))
    os.mkdir(c.p("d"))
    for m in (0o7777, 0o4000, 0o2000, 0o1000, 0o0000, 0o0777):
        os.chmod(c.p("f"), m)
        c.stat("file_%04o" % m, c.p("f"), {"mode": "%04o" % m})
    os.chmod(c.p("d"), 0o7777)
    c.stat("dir_7777", c.p("d"), {"mode": "7777"})
    c.call("mode_bits_ignored", os.chmod, c.p("f"), 0o170644, expect="OK")
    c.stat("after_type_bits", c.p("f"), {"mode": "0644", "type": "f"})


@case("chmod.fchmod_and_errors")
def _(c):
    mkfile(c.p("f"))
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.call("fchmod", os.fchmod, fd, 0o640, expect="OK")
    os.close(fd)
    c.stat("stat", c.p("f"), {"mode": "0640"})
    c.call("missing", os.chmod, c.p("nope"), 0o644, expect="ENOENT")
    c.call("enotdir", os.chmod, c.p("f", "x"), 0o644, expect="ENOTDIR")


@case("chmod.fifo_and_dir")
def _(c):
    os.mkfifo(c.p("p"))
    os.mkdir(c.p("d"))
    os.chmod(c.p("p"), 0o600)
    os.chmod(c.p("d"), 0o700)
    c.stat("fifo", c.p("p"), {"mode": "0600", "type": "p"})
    c.stat("dir", c.p("d"), {"mode": "0700", "type": "d"})


@case("chown.basic")
def _(c):
    mkfile(c.p("f"), b"x")
    tf = times_of(c.p("f"))
    tick()
    c.call("chown", os.chown, c.p("f"), NOBODY, NOBODY, expect="OK")
    c.stat("stat", c.p("f"), {"uid": NOBODY, "gid": NOBODY})
    c.times("times", c.p("f"), tf, c="later", m="same")
    c.call("chown_uid_only", os.chown, c.p("f"), 5, -1, expect="OK")
    c.call("chown_gid_only", os.chown, c.p("f"), -1, 6, expect="OK")
    c.stat("partial", c.p("f"), {"uid": 5, "gid": 6})
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.call("fchown", os.fchown, fd, 7, 8, expect="OK")
    os.close(fd)
    c.stat("after_fchown", c.p("f"), {"uid": 7, "gid": 8})


@case("chown.minus1_minus1")
def _(c):
    mkfile(c.p("f"), b"x")
    os.chown(c.p("f"), 3, 3)
    tf = times_of(c.p("f"))
    tick()
    c.call("chown", os.chown, c.p("f"), -1, -1, expect="OK")
    c.stat("stat", c.p("f"), {"uid": 3, "gid": 3})
    # POSIX allows either; Linux's local file systems update ctime
    c.times("times", c.p("f"), tf, m="same")


@case("chown.clears_suid_sgid")
def _(c):
    for n, m in (("ug_x", 0o6755), ("ug_nox", 0o6644), ("u", 0o4755), ("g_x", 0o2755), ("g_nox", 0o2644)):
        mkfile(c.p(n), b"x")
        os.chmod(c.p(n), m)
        os.chown(c.p(n), NOBODY, NOBODY)
    # Linux (chown(2)): root is treated like other users (S_ISUID cleared,
    # S_ISGID cleared when group-exec is set)
    c.stat("ug_x", c.p("ug_x"), {"mode": "0755"})
    c.stat("ug_nox", c.p("ug_nox"), {"mode": lambda m: int(m, 8) & 0o4000 == 0})
    c.stat("u", c.p("u"), {"mode": "0755"})
    c.stat("g_x", c.p("g_x"), {"mode": "0755"})
    c.stat("g_nox", c.p("g_nox"))


@case("chown.dir_keeps_sgid")
def _(c):
    os.mkdir(c.p("d"))
    os.chmod(c.p("d"), 0o2775)
    os.chown(c.p("d"), NOBODY, NOBODY)
    c.stat("dir", c.p("d"), {"mode": "2775", "uid": NOBODY})


@case("chown.same_owner_clears_suid")
def _(c):
    mkfile(c.p("f"))
    os.chmod(c.p("f"), 0o4755)
    os.chown(c.p("f"), 0, 0)
    c.stat("stat", c.p("f"))


@case("setgid_dir.inheritance")
def _(c):
    os.mkdir(c.p("sg"))
    os.chown(c.p("sg"), 0, NOBODY)
    os.chmod(c.p("sg"), 0o2775)
    mkfile(c.p("sg", "f"))
    os.mkdir(c.p("sg", "sub"))
    os.mkfifo(c.p("sg", "p"))
    os.symlink("f", c.p("sg", "l"))
    c.stat("file", c.p("sg", "f"), {"gid": NOBODY, "uid": 0})
    c.stat("subdir", c.p("sg", "sub"), {"gid": NOBODY, "mode": lambda m: int(m, 8) & 0o2000 != 0})
    c.stat("fifo", c.p("sg", "p"), {"gid": NOBODY})
    c.stat("symlink", c.p("sg", "l"), {"gid": NOBODY})


@case("setgid_dir.create_by_nonmember")
def _(c):
    os.mkdir(c.p("sg"))
    os.chown(c.p("sg"), 0, 0)
    os.chmod(c.p("sg"), 0o2777)
    path = c.p("sg")

    def mk():
        old = os.umask(0)
        try:
            open_close(os.path.join(path, "f"), os.O_WRONLY | os.O_CREAT, 0o2755)
            os.mkdir(os.path.join(path, "d"), 0o2777)
        finally:
            os.umask(old)
    c.nobody("create", mk, expect="OK")
    c.stat("file", c.p("sg", "f"), {"uid": NOBODY, "gid": 0})
    c.stat("dir", c.p("sg", "d"), {"uid": NOBODY, "gid": 0, "mode": lambda m: int(m, 8) & 0o2000 != 0})


# =====================================================================
# times
# =====================================================================

@case("times.utimensat_explicit")
def _(c):
    mkfile(c.p("f"))
    tf = times_of(c.p("f"))
    tick()
    c.call("set", utimensat, c.p("f"), (1234567890, 123456789), (987654321, 5), expect="OK")
    st = os.lstat(c.p("f"))
    c.rec("values", [st.st_atime_ns, st.st_mtime_ns], [1234567890123456789, 987654321000000005])
    c.rec("ctime", rel(st.st_ctime_ns, tf[2]), "later")


@case("times.utimensat_now")
def _(c):
    mkfile(c.p("f"))
    os.utime(c.p("f"), ns=(10**9, 10**9))
    tf = times_of(c.p("f"))
    tick()
    c.call("now", utimensat, c.p("f"), (0, UTIME_NOW), (0, UTIME_NOW), expect="OK")
    c.times("times", c.p("f"), tf, a="later", m="later", c="later")
    a, m, ct = times_of(c.p("f"))
    c.rec("recent", abs(m / 1e9 - time.time()) < 60, True)
    c.call("null_times", lambda: _check(libc.utimensat(AT_FDCWD, b(c.p("f")), None, 0)), expect="OK")


@case("times.utimensat_omit")
def _(c):
    mkfile(c.p("f"))
    os.utime(c.p("f"), ns=(111 * 10**9, 222 * 10**9))
    c.call("omit_atime", utimensat, c.p("f"), (0, UTIME_OMIT), (333, 0), expect="OK")
    st = os.lstat(c.p("f"))
    c.rec("after_omit_atime", [st.st_atime_ns, st.st_mtime_ns], [111 * 10**9, 333 * 10**9])
    c.call("omit_mtime", utimensat, c.p("f"), (444, 0), (0, UTIME_OMIT), expect="OK")
    st = os.lstat(c.p("f"))
    c.rec("after_omit_mtime", [st.st_atime_ns, st.st_mtime_ns], [444 * 10**9, 333 * 10**9])
    tf = times_of(c.p("f"))
    tick()
    c.call("omit_both", utimensat, c.p("f"), (0, UTIME_OMIT), (0, UTIME_OMIT), expect="OK")
    c.times("times_after_omit_both", c.p("f"), tf, a="same", m="same")
    c.call("now_and_omit", utimensat, c.p("f"), (0, UTIME_NOW), (0, UTIME_OMIT), expect="OK")
    st = os.lstat(c.p("f"))
    c.rec("mtime_kept", st.st_mtime_ns, 333 * 10**9)
    c.rec("atime_now", abs(st.st_atime - time.time()) < 60, True)


@case("times.utimensat_errors")
def _(c):
    mkfile(c.p("f"))
    c.call("nsec_too_big", utimensat, c.p("f"), (0, 10**9), (0, 0), expect="EINVAL")
    c.call("nsec_negative", utimensat, c.p("f"), (0, -1), (0, 0), expect="EINVAL")
    c.call("missing", utimensat, c.p("nope"), (0, UTIME_NOW), (0, UTIME_NOW), expect="ENOENT")
    c.call("missing_omit_both", utimensat, c.p("nope"), (0, UTIME_OMIT), (0, UTIME_OMIT))


@case("times.futimens")
def _(c):
    mkfile(c.p("f"))
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        c.call("futimens", utimensat, fd, (5, 6), (7, 8), expect="OK")
    finally:
        os.close(fd)
    st = os.lstat(c.p("f"))
    c.rec("values", [st.st_atime_ns, st.st_mtime_ns], [5 * 10**9 + 6, 7 * 10**9 + 8])


@case("times.range")
def _(c):
    mkfile(c.p("f"))
    for name, ns in (("zero", 0), ("pre_1970", -1_500_000_000), ("1901", -(2**31) * 10**9),
                     ("2038", (2**31) * 10**9 + 1), ("2242", (2**33) * 10**9 + 7)):
        r = outcome(os.utime, c.p("f"), ns=(ns, ns))
        c.rec(name, [r, os.lstat(c.p("f")).st_mtime_ns if r == "OK" else None], ["OK", ns])


@case("times.dir_and_symlink_and_fifo")
def _(c):
    os.mkdir(c.p("d"))
    os.mkfifo(c.p("p"))
    for n in ("d", "p"):
        c.call("utime_" + n, os.utime, c.p(n), ns=(10**9, 2 * 10**9), expect="OK")
        c.rec("mtime_" + n, os.lstat(c.p(n)).st_mtime_ns, 2 * 10**9)


@case("times.read_atime")
def _(c):
    mkfile(c.p("f"), b"data")
    os.utime(c.p("f"), ns=(10**9, 10**9))   # atime == mtime, long ago
    tf = times_of(c.p("f"))
    tick()
    readf(c.p("f"))
    c.times("first_read", c.p("f"), tf, m="same", c="same")
    tf = times_of(c.p("f"))
    tick()
    readf(c.p("f"))
    c.times("second_read", c.p("f"), tf, m="same", c="same")
    os.utime(c.p("f"), ns=(3 * 10**9, 3 * 10**9))
    tf = times_of(c.p("f"))
    tick()
    readf(c.p("f"), O_NOATIME)
    c.times("read_o_noatime", c.p("f"), tf, a="same", m="same", c="same")


@case("times.readdir_atime")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("d", "x"))
    os.utime(c.p("d"), ns=(10**9, 10**9))
    td = times_of(c.p("d"))
    tick()
    os.listdir(c.p("d"))
    c.times("after_readdir", c.p("d"), td, m="same", c="same")


@case("times.readlink_atime")
def _(c):
    os.symlink("target", c.p("l"))
    utimensat(c.p("l"), (1, 0), (1, 0), AT_SYMLINK_NOFOLLOW)
    tl = times_of(c.p("l"))
    tick()
    os.readlink(c.p("l"))
    c.times("after_readlink", c.p("l"), tl, m="same", c="same")


@case("times.mkdir_rmdir_parent")
def _(c):
    tp = times_of(c.d)
    tick()
    os.mkdir(c.p("d"))
    ptimes(c, "mkdir.parent", c.d, tp)
    tp, td = times_of(c.d), times_of(c.p("d"))
    tick()
    os.mkdir(c.p("d", "sub"))
    ptimes(c, "mkdir.dir_itself", c.p("d"), td)
    c.times("mkdir.grandparent", c.d, tp, m="same", c="same")
    tp = times_of(c.p("d"))
    tick()
    os.rmdir(c.p("d", "sub"))
    ptimes(c, "rmdir.parent", c.p("d"), tp)


@case("times.new_entries_times_equal")
def _(c):
    os.mkdir(c.p("d"))
    open_close(c.p("f"), os.O_WRONLY | os.O_CREAT)
    os.symlink("f", c.p("l"))
    os.mkfifo(c.p("p"))
    out = {}
    for n in ("d", "f", "l", "p"):
        a, m, ct = times_of(c.p(n))
        out[n] = [a == m, m == ct]
    c.rec("a_eq_m_and_m_eq_c", out, {n: [True, True] for n in ("d", "f", "l", "p")})


@case("times.mknod_parent")
def _(c):
    tp = times_of(c.d)
    tick()
    os.mkfifo(c.p("p"))
    ptimes(c, "parent", c.d, tp)


@case("times.link_unlink_symlink")
def _(c):
    mkfile(c.p("f"))
    os.mkdir(c.p("d"))
    tp = times_of(c.p("d"))
    tick()
    os.link(c.p("f"), c.p("d", "h"), follow_symlinks=False)
    ptimes(c, "link.parent", c.p("d"), tp)
    tp = times_of(c.p("d"))
    tick()
    os.unlink(c.p("d", "h"))
    ptimes(c, "unlink.parent", c.p("d"), tp)
    tp = times_of(c.p("d"))
    tick()
    os.symlink("x", c.p("d", "s"))
    ptimes(c, "symlink.parent", c.p("d"), tp)


@case("times.truncate_open_trunc")
def _(c):
    mkfile(c.p("f"), b"abc")
    tf = times_of(c.p("f"))
    tick()
    os.truncate(c.p("f"), 1)
    c.times("truncate", c.p("f"), tf, m="later", c="later")
    tf = times_of(c.p("f"))
    tick()
    open_close(c.p("f"), os.O_WRONLY | os.O_TRUNC)
    c.times("o_trunc", c.p("f"), tf, m="later", c="later")


@case("times.xattr_ctime")
def _(c):
    mkfile(c.p("f"))
    tf = times_of(c.p("f"))
    tick()
    os.setxattr(c.p("f"), "user.a", b"1")
    c.times("setxattr", c.p("f"), tf, c="later", m="same")
    tf = times_of(c.p("f"))
    tick()
    os.removexattr(c.p("f"), "user.a")
    c.times("removexattr", c.p("f"), tf, c="later", m="same")
    tf = times_of(c.p("f"))
    tick()
    os.listxattr(c.p("f"))
    c.times("listxattr", c.p("f"), tf, c="same", m="same")


@case("times.fallocate")
def _(c):
    mkfile(c.p("f"), b"abc")
    tf = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        r = outcome(fallocate, fd, 0, 0, 100000)
    finally:
        os.close(fd)
    c.rec("fallocate", r, "OK")
    c.times("times", c.p("f"), tf)


@case("times.chmod_chown_on_dir")
def _(c):
    os.mkdir(c.p("d"))
    td = times_of(c.p("d"))
    tick()
    os.chmod(c.p("d"), 0o700)
    c.times("chmod", c.p("d"), td, m="same", c="later")
    td = times_of(c.p("d"))
    tick()
    os.chown(c.p("d"), 1, 1)
    c.times("chown", c.p("d"), td, m="same", c="later")


@case("times.statx_btime")
def _(c):
    mkfile(c.p("f"))
    try:
        c.rec("btime_reported", statx_btime(c.p("f")))
    except OSError as e:
        c.rec("btime_reported", errname(e.errno))


# =====================================================================
# xattrs
# =====================================================================

@case("xattr.set_get_list_remove")
def _(c):
    mkfile(c.p("f"))
    c.call("set", os.setxattr, c.p("f"), "user.one", b"value-1", expect="OK")
    c.call("set2", os.setxattr, c.p("f"), "user.two", b"\x00\x01\xff", expect="OK")
    c.rec("get", os.getxattr(c.p("f"), "user.one").decode(), "value-1")
    c.rec("get_binary", list(os.getxattr(c.p("f"), "user.two")), [0, 1, 255])
    c.rec("list", sorted(x for x in os.listxattr(c.p("f")) if x.startswith("user.")), ["user.one", "user.two"])
    c.call("overwrite", os.setxattr, c.p("f"), "user.one", b"v2", expect="OK")
    c.rec("get_after_overwrite", os.getxattr(c.p("f"), "user.one").decode(), "v2")
    c.call("remove", os.removexattr, c.p("f"), "user.one", expect="OK")
    c.call("get_removed", os.getxattr, c.p("f"), "user.one", expect="ENODATA")
    c.rec("list_after", [x for x in os.listxattr(c.p("f")) if x.startswith("user.")], ["user.two"])


@case("xattr.flags")
def _(c):
    mkfile(c.p("f"))
    c.call("replace_missing", os.setxattr, c.p("f"), "user.a", b"1", os.XATTR_REPLACE, expect="ENODATA")
    c.call("create_new", os.setxattr, c.p("f"), "user.a", b"1", os.XATTR_CREATE, expect="OK")
    c.call("create_existing", os.setxattr, c.p("f"), "user.a", b"2", os.XATTR_CREATE, expect="EEXIST")
    c.call("replace_existing", os.setxattr, c.p("f"), "user.a", b"3", os.XATTR_REPLACE, expect="OK")
    c.rec("value", os.getxattr(c.p("f"), "user.a").decode(), "3")
    c.call("both_flags", os.setxattr, c.p("f"), "user.a", b"4", os.XATTR_CREATE | os.XATTR_REPLACE)
    c.call("bad_flag", os.setxattr, c.p("f"), "user.a", b"4", 8, expect="EINVAL")
    c.call("remove_missing", os.removexattr, c.p("f"), "user.none", expect="ENODATA")
    c.call("get_missing", os.getxattr, c.p("f"), "user.none", expect="ENODATA")


@case("xattr.buffer_sizes")
def _(c):
    mkfile(c.p("f"))
    os.setxattr(c.p("f"), "user.key", b"0123456789")
    c.rec("size_query", getxattr_n(c.p("f"), "user.key", 0), 10)
    c.rec("small_buffer", outcome(getxattr_n, c.p("f"), "user.key", 4), "ERANGE")
    c.rec("exact_buffer", getxattr_n(c.p("f"), "user.key", 10).decode(), "0123456789")
    c.rec("list_size_query", listxattr_n(c.p("f"), 0), len(b"user.key\0"))
    c.rec("list_small_buffer", outcome(listxattr_n, c.p("f"), 3), "ERANGE")


@case("xattr.values")
def _(c):
    mkfile(c.p("f"))
    c.call("empty", os.setxattr, c.p("f"), "user.empty", b"", expect="OK")
    c.rec("empty_value", os.getxattr(c.p("f"), "user.empty").decode(), "")
    big = pattern(4000)
    c.call("4000_bytes", os.setxattr, c.p("f"), "user.big", big, expect="OK")
    c.rec("4000_back", os.getxattr(c.p("f"), "user.big") == big, True)
    c.call("65537_bytes", os.setxattr, c.p("f"), "user.huge", bytes(65537), expect="E2BIG")


@case("xattr.large_value_8k")
def _(c):
    mkfile(c.p("f"))
    r = c.call("set_8k", os.setxattr, c.p("f"), "user.v", pattern(8192))
    if r == "OK":
        c.rec("back", os.getxattr(c.p("f"), "user.v") == pattern(8192), True)


@case("xattr.names")
def _(c):
    mkfile(c.p("f"))
    c.call("name_255", os.setxattr, c.p("f"), "user." + "n" * 250, b"x", expect="OK")
    c.call("name_256", os.setxattr, c.p("f"), "user." + "n" * 251, b"x", expect="ERANGE")
    c.call("get_name_256", os.getxattr, c.p("f"), "user." + "n" * 251, expect="ERANGE")
    c.call("unknown_namespace", os.setxattr, c.p("f"), "foo.bar", b"x", expect="EOPNOTSUPP")
    c.call("no_namespace", os.setxattr, c.p("f"), "plain", b"x", expect="EOPNOTSUPP")
    c.call("empty_user_name", os.setxattr, c.p("f"), "user.", b"x")
    c.call("trusted_as_root", os.setxattr, c.p("f"), "trusted.t", b"x")
    c.call("security_as_root", os.setxattr, c.p("f"), "security.s", b"x")


@case("xattr.many")
def _(c):
    mkfile(c.p("f"))
    names = ["user.k%03d" % i for i in range(100)]
    for i, n in enumerate(names):
        os.setxattr(c.p("f"), n, str(i).encode())
    c.rec("list", sorted(x for x in os.listxattr(c.p("f")) if x.startswith("user.")) == names, True)
    c.rec("values", all(os.getxattr(c.p("f"), n) == str(i).encode() for i, n in enumerate(names)), True)


@case("xattr.on_dir_symlink_fifo")
def _(c):
    os.mkdir(c.p("d"))
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    os.mkfifo(c.p("p"))
    c.call("dir", os.setxattr, c.p("d"), "user.x", b"d", expect="OK")
    c.rec("dir_get", os.getxattr(c.p("d"), "user.x").decode(), "d")
    c.call("symlink_nofollow_user", lambda: os.setxattr(c.p("l"), "user.x", b"l", follow_symlinks=False),
           expect="EPERM")
    c.call("symlink_follows", os.setxattr, c.p("l"), "user.y", b"t", expect="OK")
    c.rec("target_got_it", os.getxattr(c.p("f"), "user.y").decode(), "t")
    c.call("fifo_user", os.setxattr, c.p("p"), "user.x", b"p", expect="EPERM")


@case("xattr.posix_acl")
def _(c):
    mkfile(c.p("f"))
    # version 2, entries: USER_OBJ rw-, GROUP_OBJ r--, OTHER r--
    acl = struct.pack("<I", 2) + struct.pack("<HHI", 0x01, 6, 0xFFFFFFFF) + \
        struct.pack("<HHI", 0x04, 4, 0xFFFFFFFF) + struct.pack("<HHI", 0x20, 4, 0xFFFFFFFF)
    c.call("set_access_acl", os.setxattr, c.p("f"), "system.posix_acl_access", acl)
    c.stat("after", c.p("f"))


@case("xattr.fd_calls")
def _(c):
    mkfile(c.p("f"))
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        c.call("fsetxattr", os.setxattr, fd, "user.fd", b"v", expect="OK")
        c.rec("fgetxattr", os.getxattr(fd, "user.fd").decode(), "v")
        c.rec("flistxattr", [x for x in os.listxattr(fd) if x.startswith("user.")], ["user.fd"])
        c.call("fremovexattr", os.removexattr, fd, "user.fd", expect="OK")
    finally:
        os.close(fd)


@case("xattr.survive_rename_and_link")
def _(c):
    mkfile(c.p("f"))
    os.setxattr(c.p("f"), "user.k", b"v")
    os.rename(c.p("f"), c.p("g"))
    os.link(c.p("g"), c.p("h"), follow_symlinks=False)
    c.rec("after_rename", os.getxattr(c.p("g"), "user.k").decode(), "v")
    c.rec("via_link", os.getxattr(c.p("h"), "user.k").decode(), "v")


# =====================================================================
# mknod / special files
# =====================================================================

@case("mknod.fifo")
def _(c):
    c.call("mkfifo", os.mkfifo, c.p("p"), 0o666, expect="OK")
    c.stat("stat", c.p("p"), {"type": "p", "mode": "0644", "nlink": 1, "size": 0})
    r = os.open(c.p("p"), os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(c.p("p"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(w, b"through the fifo")
        c.rec("data", os.read(r, 100).decode(), "through the fifo")
    finally:
        os.close(w)
        os.close(r)
    c.call("writer_without_reader", open_close, c.p("p"), os.O_WRONLY | os.O_NONBLOCK, expect="ENXIO")
    c.call("exists", os.mkfifo, c.p("p"), expect="EEXIST")


@case("mknod.devices_as_root")
def _(c):
    c.call("chr", os.mknod, c.p("c"), stat.S_IFCHR | 0o620, os.makedev(1, 3), expect="OK")
    c.call("blk", os.mknod, c.p("b"), stat.S_IFBLK | 0o600, os.makedev(7, 200), expect="OK")
    c.stat("chr", c.p("c"), {"type": "c", "rdev": "1:3", "mode": "0600"})   # umask 022
    c.stat("blk", c.p("b"), {"type": "b", "rdev": "7:200", "mode": "0600"})
    # a nodev mount refuses with EACCES
    c.call("open_null", lambda: os.write(os.open(c.p("c"), os.O_WRONLY), b"discard"))


@case("mknod.other_types")
def _(c):
    c.call("regular", os.mknod, c.p("r"), stat.S_IFREG | 0o600, expect="OK")
    c.stat("regular", c.p("r"), {"type": "f", "mode": "0600", "size": 0})
    c.call("zero_type_is_regular", os.mknod, c.p("z"), 0o600, expect="OK")
    c.stat("zero_type", c.p("z"), {"type": "f"})
    c.call("dir", os.mknod, c.p("d"), stat.S_IFDIR | 0o755, expect="EPERM")
    c.call("socket", os.mknod, c.p("s"), stat.S_IFSOCK | 0o644, expect="OK")
    c.stat("socket", c.p("s"), {"type": "s"})
    c.call("bad_type", os.mknod, c.p("x"), 0o170000 | 0o644, expect="EINVAL")


@case("mknod.unix_socket_bind_connect")
def _(c):
    old = os.getcwd()
    os.chdir(c.d)
    try:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            c.call("bind", srv.bind, "sock", expect="OK")
            c.stat("stat", "sock", {"type": "s"})
            cl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                c.call("send", cl.sendto, b"ping", "sock", expect="OK")
                srv.settimeout(5)
                c.rec("received", srv.recv(10).decode(), "ping")
            finally:
                cl.close()
            c.call("bind_again", socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind, "sock",
                   expect="EADDRINUSE")
        finally:
            srv.close()
    finally:
        os.chdir(old)


# =====================================================================
# fallocate
# =====================================================================

def _falloc(c, key, fd, mode, off, n, expect=None):
    return c.call(key, fallocate, fd, mode, off, n, expect=expect)


@case("fallocate.modes")
def _(c):
    mkfile(c.p("f"))
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        _falloc(c, "plain", fd, 0, 0, 100000, expect="OK")
        c.rec("size_after_plain", os.fstat(fd).st_size, 100000)
        c.rec("reads_zero", os.pread(fd, 100000, 0) == bytes(100000), True)
        _falloc(c, "keep_size", fd, FALLOC_FL_KEEP_SIZE, 100000, 100000, expect="OK")
        c.rec("size_after_keep", os.fstat(fd).st_size, 100000)
        os.pwrite(fd, pattern(100000), 0)
        _falloc(c, "punch", fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10000, 20000, expect="OK")
        data = os.pread(fd, 100000, 0)
        c.rec("punched_zero", data[10000:30000] == bytes(20000), True)
        c.rec("around_punch_kept", data[:10000] + data[30000:] == pattern(100000)[:10000] + pattern(100000)[30000:],
              True)
        c.rec("size_after_punch", os.fstat(fd).st_size, 100000)
        _falloc(c, "zero_range", fd, FALLOC_FL_ZERO_RANGE, 50000, 100000)
        c.rec("size_after_zero_range", os.fstat(fd).st_size)
        _falloc(c, "punch_without_keep_size", fd, FALLOC_FL_PUNCH_HOLE, 0, 10, expect="EOPNOTSUPP")
        _falloc(c, "zero_length", fd, 0, 0, 0, expect="EINVAL")
        _falloc(c, "negative_offset", fd, 0, -1, 10, expect="EINVAL")
    finally:
        os.close(fd)


@case("fallocate.collapse_insert")
def _(c):
    mkfile(c.p("f"), pattern(65536))
    fd = os.open(c.p("f"), os.O_RDWR)
    try:
        _falloc(c, "collapse", fd, FALLOC_FL_COLLAPSE_RANGE, 4096, 4096)
        c.rec("size_after_collapse", os.fstat(fd).st_size)
        _falloc(c, "insert", fd, FALLOC_FL_INSERT_RANGE, 4096, 4096)
        c.rec("size_after_insert", os.fstat(fd).st_size)
    finally:
        os.close(fd)


@case("fallocate.bad_fd")
def _(c):
    mkfile(c.p("f"))
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        _falloc(c, "rdonly", fd, 0, 0, 10, expect="EBADF")
    finally:
        os.close(fd)
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_APPEND)
    try:
        _falloc(c, "append_keep_size", fd, FALLOC_FL_KEEP_SIZE, 0, 10)
        _falloc(c, "append_punch", fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10)
    finally:
        os.close(fd)


# =====================================================================
# access, statfs
# =====================================================================

@case("access.root")
def _(c):
    mkfile(c.p("f0"), mode=0o000)
    mkfile(c.p("f644"), mode=0o644)
    mkfile(c.p("f100"), mode=0o100)
    os.mkdir(c.p("d0"), 0)
    acc = _acc
    c.call("f0_R", acc, c.p("f0"), os.R_OK, expect="OK")
    c.call("f0_W", acc, c.p("f0"), os.W_OK, expect="OK")
    c.call("f0_X", acc, c.p("f0"), os.X_OK, expect="EACCES")
    c.call("f644_X", acc, c.p("f644"), os.X_OK, expect="EACCES")
    c.call("f100_X", acc, c.p("f100"), os.X_OK, expect="OK")
    c.call("d0_X", acc, c.p("d0"), os.X_OK, expect="OK")
    c.call("missing_F", lambda: _check(libc.access(b(c.p("nope")), 0)), expect="ENOENT")
    c.call("bad_mode", lambda: _check(libc.access(b(c.p("f644")), 0o100)), expect="EINVAL")


def _acc(p, m):
    _check(libc.access(b(p), m))


@case("access.unprivileged")
def _(c):
    for n, m, uid, gid in (("o644", 0o644, 0, 0), ("o600", 0o600, 0, 0), ("o755", 0o755, 0, 0),
                           ("o604", 0o604, 0, 0), ("own066", 0o066, NOBODY, 0), ("grp060", 0o060, 0, NOBODY)):
        mkfile(c.p(n), mode=m)
        os.chown(c.p(n), uid, gid)
    res = {}
    for n in ("o644", "o600", "o755", "o604", "own066", "grp060"):
        for mn, m in (("R", os.R_OK), ("W", os.W_OK), ("X", os.X_OK)):
            res[n + "_" + mn] = as_user(lambda: _acc(c.p(n), m))[0]
    exp = {"o644_R": "OK", "o644_W": "EACCES", "o644_X": "EACCES", "o600_R": "EACCES", "o600_W": "EACCES",
           "o600_X": "EACCES", "o755_R": "OK", "o755_W": "EACCES", "o755_X": "OK", "o604_R": "OK",
           "o604_W": "EACCES", "o604_X": "EACCES", "own066_R": "EACCES", "own066_W": "EACCES",
           "own066_X": "EACCES", "grp060_R": "OK", "grp060_W": "OK", "grp060_X": "EACCES"}
    c.rec("matrix", res, exp)


@case("statfs.basic")
def _(c):
    sv = os.statvfs(c.d)
    c.rec("namemax", sv.f_namemax, 255)
    c.rec("has_blocks", sv.f_blocks > 0 and sv.f_bsize > 0, True)
    c.rec("free_le_total", sv.f_bfree <= sv.f_blocks and sv.f_bavail <= sv.f_bfree, True)


# =====================================================================
# another user (uid/gid 65534, no supplementary groups)
# =====================================================================

def _perm_tree(c):
    os.chmod(c.d, 0o755)
    mkfile(c.p("pub"), b"public", 0o644)
    mkfile(c.p("priv"), b"secret", 0o600)
    mkfile(c.p("rw"), b"all", 0o666)


@case("perm.read_write_eacces")
def _(c):
    _perm_tree(c)
    c.nobody("read_0644", lambda: readf(c.p("pub")).decode(), expect="OK")
    c.nobody("read_0600", lambda: readf(c.p("priv")), expect="EACCES")
    c.nobody("write_0644", lambda: open_close(c.p("pub"), os.O_WRONLY), expect="EACCES")
    c.nobody("write_0666", lambda: os.write(os.open(c.p("rw"), os.O_WRONLY | os.O_APPEND), b"+"), expect="OK")
    c.nobody("truncate_0644", lambda: os.truncate(c.p("pub"), 0), expect="EACCES")
    c.nobody("o_trunc_0644", lambda: open_close(c.p("pub"), os.O_RDONLY | os.O_TRUNC), expect="EACCES")
    c.rec("content_kept", readf(c.p("pub")).decode(), "public")


@case("perm.create_unlink_in_0755")
def _(c):
    _perm_tree(c)
    c.nobody("create", lambda: open_close(c.p("new"), os.O_WRONLY | os.O_CREAT), expect="EACCES")
    c.nobody("mkdir", lambda: os.mkdir(c.p("newd")), expect="EACCES")
    c.nobody("unlink", lambda: os.unlink(c.p("pub")), expect="EACCES")
    c.nobody("rename", lambda: os.rename(c.p("pub"), c.p("moved")), expect="EACCES")
    c.nobody("symlink", lambda: os.symlink("x", c.p("sl")), expect="EACCES")
    c.nobody("mkfifo", lambda: os.mkfifo(c.p("fifo")), expect="EACCES")
    c.nobody("create_existing_0666", lambda: open_close(c.p("rw"), os.O_WRONLY | os.O_CREAT), expect="OK")
    c.nobody("create_excl_existing", lambda: open_close(c.p("rw"), os.O_WRONLY | os.O_CREAT | os.O_EXCL),
             expect="EEXIST")
    c.rec("names", sorted(os.listdir(c.d)), ["priv", "pub", "rw"])


@case("perm.search_and_list")
def _(c):
    for n, m in (("d700", 0o700), ("d644", 0o644), ("d711", 0o711), ("d733", 0o733)):
        os.mkdir(c.p(n))
        mkfile(c.p(n, "f"), b"x", 0o644)
        os.chmod(c.p(n), m)
    c.nobody("stat_in_0700", lambda: os.stat(c.p("d700", "f")), expect="EACCES")
    c.nobody("list_0700", lambda: os.listdir(c.p("d700")), expect="EACCES")
    c.nobody("list_0644", lambda: os.listdir(c.p("d644")), expect="OK")
    c.nobody("stat_in_0644", lambda: os.stat(c.p("d644", "f")), expect="EACCES")
    c.nobody("list_0711", lambda: os.listdir(c.p("d711")), expect="EACCES")
    c.nobody("stat_in_0711", lambda: os.stat(c.p("d711", "f")), expect="OK")
    c.nobody("read_in_0711", lambda: readf(c.p("d711", "f")).decode(), expect="OK")
    c.nobody("create_in_0733", lambda: open_close(c.p("d733", "g"), os.O_WRONLY | os.O_CREAT), expect="OK")
    c.nobody("chdir_0700", lambda: os.chdir(c.p("d700")), expect="EACCES")
    c.stat("created", c.p("d733", "g"), {"uid": NOBODY, "gid": NOBODY})


@case("perm.owner_class_precedence")
def _(c):
    mkfile(c.p("f"), b"x", 0o066)
    os.chown(c.p("f"), NOBODY, NOBODY)
    # owner bits apply to the owner even when group/other bits would allow
    c.nobody("read", lambda: readf(c.p("f")), expect="EACCES")
    c.nobody("chmod_own", lambda: os.chmod(c.p("f"), 0o644), expect="OK")
    c.nobody("read_after_chmod", lambda: readf(c.p("f")).decode(), expect="OK")
    mkfile(c.p("g"), b"x", 0o604)
    os.chown(c.p("g"), 0, NOBODY)
    c.nobody("group_class_no_read", lambda: readf(c.p("g")), expect="EACCES")


@case("perm.chmod_chown_others_file")
def _(c):
    _perm_tree(c)
    c.nobody("chmod", lambda: os.chmod(c.p("pub"), 0o777), expect="EPERM")
    c.nobody("chown_to_self", lambda: os.chown(c.p("pub"), NOBODY, NOBODY), expect="EPERM")
    c.nobody("chown_minus1", lambda: os.chown(c.p("pub"), -1, -1), expect=("EPERM", "OK"))
    c.nobody("utimens_explicit", lambda: os.utime(c.p("rw"), ns=(1, 1)), expect="EPERM")
    c.nobody("utimens_now_writable", lambda: utimensat(c.p("rw"), (0, UTIME_NOW), (0, UTIME_NOW)), expect="OK")
    c.nobody("utimens_now_not_writable", lambda: utimensat(c.p("pub"), (0, UTIME_NOW), (0, UTIME_NOW)),
             expect="EACCES")
    c.nobody("utimens_null_not_writable", lambda: os.utime(c.p("pub")), expect="EACCES")
    c.nobody("utimens_omit_both", lambda: utimensat(c.p("pub"), (0, UTIME_OMIT), (0, UTIME_OMIT)), expect="OK")
    c.nobody("open_noatime", lambda: open_close(c.p("pub"), os.O_RDONLY | O_NOATIME), expect="EPERM")
    c.stat("pub", c.p("pub"), {"mode": "0644", "uid": 0})


@case("perm.chown_own_file")
def _(c):
    mkfile(c.p("f"), b"x", 0o644)
    os.chown(c.p("f"), NOBODY, NOBODY)
    c.nobody("give_away", lambda: os.chown(c.p("f"), 0, -1), expect="EPERM")
    c.nobody("chgrp_nonmember", lambda: os.chown(c.p("f"), -1, 0), expect="EPERM")
    c.nobody("chgrp_own_group", lambda: os.chown(c.p("f"), -1, NOBODY), expect="OK")
    c.nobody("chown_same", lambda: os.chown(c.p("f"), NOBODY, NOBODY), expect="OK")
    c.nobody("utime_explicit_own", lambda: os.utime(c.p("f"), ns=(5, 6)), expect="OK")
    c.rec("mtime", os.lstat(c.p("f")).st_mtime_ns, 6)
    c.stat("stat", c.p("f"), {"uid": NOBODY, "gid": NOBODY})


@case("perm.chmod_sgid_nonmember_cleared")
def _(c):
    mkfile(c.p("f"), b"x", 0o644)
    os.chown(c.p("f"), NOBODY, 0)
    c.nobody("chmod", lambda: os.chmod(c.p("f"), 0o2755), expect="OK")
    # chmod(2): S_ISGID is silently turned off when the caller is not in the file's group
    c.stat("stat", c.p("f"), {"mode": "0755"})
    c.nobody("chmod_sticky_file", lambda: os.chmod(c.p("f"), 0o1755), expect="OK")
    c.stat("sticky_file", c.p("f"))


@case("perm.write_clears_suid")
def _(c):
    os.chmod(c.d, 0o755)
    for n, m, owner in (("root6777", 0o6777, 0), ("root2666", 0o2666, 0), ("own4755", 0o4755, NOBODY),
                        ("own2775", 0o2775, NOBODY), ("root_trunc", 0o6777, 0)):
        mkfile(c.p(n), b"data", 0o600)
        os.chown(c.p(n), owner, owner)
        os.chmod(c.p(n), m)
    w = lambda p: os.write(os.open(p, os.O_WRONLY), b"X")  # noqa: E731
    c.nobody("write_root6777", lambda: w(c.p("root6777")), expect="OK")
    c.nobody("write_root2666", lambda: w(c.p("root2666")), expect="OK")
    c.nobody("write_own4755", lambda: w(c.p("own4755")), expect="OK")
    c.nobody("write_own2775", lambda: w(c.p("own2775")), expect="OK")
    c.nobody("truncate_root", lambda: os.truncate(c.p("root_trunc"), 1), expect="OK")
    c.stat("root6777", c.p("root6777"), {"mode": "0777"})
    # S_ISGID without group-exec: kept or cleared depending on the kernel version
    c.stat("root2666", c.p("root2666"))
    c.stat("own4755", c.p("own4755"), {"mode": "0755"})
    c.stat("own2775", c.p("own2775"))
    c.stat("root_trunc", c.p("root_trunc"), {"mode": "0777"})


@case("perm.root_write_keeps_suid")
def _(c):
    mkfile(c.p("f"), b"data", 0o644)
    os.chown(c.p("f"), NOBODY, NOBODY)
    os.chmod(c.p("f"), 0o6755)
    with open(c.p("f"), "ab") as f:
        f.write(b"more")
    c.stat("stat", c.p("f"), {"mode": "6755"})


@case("perm.sticky_dir")
def _(c):
    os.mkdir(c.p("t"))
    os.chmod(c.p("t"), 0o1777)
    mkfile(c.p("t", "rootfile"), b"r", 0o666)
    mkfile(c.p("t", "rootfile2"), b"r", 0o666)
    t = c.p("t")
    c.nobody("create_own", lambda: mkfile(os.path.join(t, "mine"), b"m", 0o644), expect="OK")
    c.nobody("unlink_other", lambda: os.unlink(os.path.join(t, "rootfile")), expect="EPERM")
    c.nobody("rename_other", lambda: os.rename(os.path.join(t, "rootfile"), os.path.join(t, "x")), expect="EPERM")
    c.nobody("rename_own_over_other", lambda: os.rename(os.path.join(t, "mine"), os.path.join(t, "rootfile")),
             expect="EPERM")
    c.nobody("write_other_0666", lambda: os.write(os.open(os.path.join(t, "rootfile"), os.O_WRONLY), b"w"),
             expect="OK")
    c.nobody("rename_own", lambda: os.rename(os.path.join(t, "mine"), os.path.join(t, "mine2")), expect="OK")
    c.nobody("unlink_own", lambda: os.unlink(os.path.join(t, "mine2")), expect="OK")
    c.call("root_unlinks_other", os.unlink, c.p("t", "rootfile2"), expect="OK")
    c.rec("names", sorted(os.listdir(t)), ["rootfile"])


@case("perm.sticky_dir_owned_by_user")
def _(c):
    os.mkdir(c.p("t"))
    os.chmod(c.p("t"), 0o1777)
    os.chown(c.p("t"), NOBODY, NOBODY)
    mkfile(c.p("t", "rootfile"), b"r", 0o644)
    c.nobody("dir_owner_unlinks", lambda: os.unlink(c.p("t", "rootfile")), expect="OK")
    os.mkdir(c.p("t", "rootdir"))
    c.nobody("dir_owner_rmdir", lambda: os.rmdir(c.p("t", "rootdir")), expect="OK")


@case("perm.sticky_rmdir_other")
def _(c):
    os.mkdir(c.p("t"))
    os.chmod(c.p("t"), 0o1777)
    os.mkdir(c.p("t", "rootdir"))
    os.chmod(c.p("t", "rootdir"), 0o777)
    c.nobody("rmdir_other", lambda: os.rmdir(c.p("t", "rootdir")), expect="EPERM")
    c.nobody("rename_other_dir", lambda: os.rename(c.p("t", "rootdir"), c.p("t", "x")), expect="EPERM")


@case("perm.nonsticky_0777_dir")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    mkfile(c.p("w", "rootfile"), b"r", 0o600)
    c.nobody("unlink_other", lambda: os.unlink(c.p("w", "rootfile")), expect="OK")


@case("perm.rename_dir_needs_write_on_dir")
def _(c):
    for n in ("p1", "p2"):
        os.mkdir(c.p(n))
        os.chmod(c.p(n), 0o777)
    os.mkdir(c.p("p1", "rootdir"))
    os.chmod(c.p("p1", "rootdir"), 0o755)
    mkfile(c.p("p1", "rootfile"), b"x", 0o644)
    # moving a directory to another parent updates its "..": needs write on it
    c.nobody("dir_cross_parent", lambda: os.rename(c.p("p1", "rootdir"), c.p("p2", "rootdir")), expect="EACCES")
    c.nobody("dir_same_parent", lambda: os.rename(c.p("p1", "rootdir"), c.p("p1", "renamed")), expect="OK")
    c.nobody("file_cross_parent", lambda: os.rename(c.p("p1", "rootfile"), c.p("p2", "rootfile")), expect="OK")


@case("perm.xattr")
def _(c):
    _perm_tree(c)
    os.setxattr(c.p("priv"), "user.k", b"v")
    os.setxattr(c.p("pub"), "user.k", b"v")
    c.nobody("set_on_0644", lambda: os.setxattr(c.p("pub"), "user.n", b"v"), expect="EACCES")
    c.nobody("set_on_0666", lambda: os.setxattr(c.p("rw"), "user.n", b"v"), expect="OK")
    c.nobody("get_on_0600", lambda: os.getxattr(c.p("priv"), "user.k"), expect="EACCES")
    c.nobody("get_on_0644", lambda: os.getxattr(c.p("pub"), "user.k").decode(), expect="OK")
    c.nobody("list_on_0600", lambda: os.listxattr(c.p("priv")))
    c.nobody("remove_on_0644", lambda: os.removexattr(c.p("pub"), "user.k"), expect="EACCES")
    c.nobody("set_trusted", lambda: os.setxattr(c.p("rw"), "trusted.t", b"v"), expect="EPERM")


@case("perm.special_files")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    c.nobody("mknod_chr", lambda: os.mknod(c.p("w", "c"), stat.S_IFCHR | 0o644, os.makedev(1, 3)), expect="EPERM")
    c.nobody("mkfifo", lambda: os.mkfifo(c.p("w", "p")), expect="OK")
    c.stat("fifo", c.p("w", "p"), {"uid": NOBODY, "gid": NOBODY, "type": "p"})
    mkfile(c.p("w", "rootpriv"), b"x", 0o600)
    c.nobody("hardlink_others_0600", lambda: os.link(c.p("w", "rootpriv"), c.p("w", "hl"), follow_symlinks=False))


@case("perm.new_file_ownership")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    c.nobody("create", lambda: mkfile(c.p("w", "f"), b"x", 0o640), expect="OK")
    c.nobody("mkdir", lambda: os.mkdir(c.p("w", "d"), 0o750), expect="OK")
    c.nobody("symlink", lambda: os.symlink("f", c.p("w", "l")), expect="OK")
    c.stat("file", c.p("w", "f"), {"uid": NOBODY, "gid": NOBODY, "mode": "0640"})
    c.stat("dir", c.p("w", "d"), {"uid": NOBODY, "gid": NOBODY, "mode": "0750"})
    c.stat("symlink", c.p("w", "l"), {"uid": NOBODY, "gid": NOBODY})


# =====================================================================
# EXDEV
# =====================================================================

def _other_dir(c):
    d = os.path.join(c.other, os.path.basename(c.d))
    os.mkdir(d)
    return d


@case("exdev.rename_out", needs_other=True)
def _(c):
    o = _other_dir(c)
    mkfile(c.p("f"), b"x")
    os.mkdir(c.p("d"))
    c.call("file", os.rename, c.p("f"), os.path.join(o, "f"), expect="EXDEV")
    c.call("dir", os.rename, c.p("d"), os.path.join(o, "d"), expect="EXDEV")
    c.call("noreplace", renameat2, c.p("f"), os.path.join(o, "f"), RENAME_NOREPLACE, expect="EXDEV")
    c.call("exchange", lambda: (mkfile(os.path.join(o, "g")),
                                renameat2(c.p("f"), os.path.join(o, "g"), RENAME_EXCHANGE)), expect="EXDEV")
    c.rec("src_kept", sorted(os.listdir(c.d)), ["d", "f"])


@case("exdev.rename_in_and_link", needs_other=True)
def _(c):
    o = _other_dir(c)
    mkfile(os.path.join(o, "f"), b"x")
    mkfile(c.p("g"), b"y")
    c.call("rename_in", os.rename, os.path.join(o, "f"), c.p("f"), expect="EXDEV")
    lk = lambda a, z: os.link(a, z, follow_symlinks=False)  # noqa: E731
    c.call("link_out", lk, c.p("g"), os.path.join(o, "g"), expect="EXDEV")
    c.call("link_in", lk, os.path.join(o, "f"), c.p("h"), expect="EXDEV")


# =====================================================================
# content at coffer's block edges, and a random model
# =====================================================================

FRAME, EXTENT = 16384, 4 << 20


@case("content.frame_edges")
def _(c):
    model = bytearray()
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for off, n in ((FRAME - 1, 2), (2 * FRAME - 3, 7), (0, FRAME), (3 * FRAME, FRAME + 1),
                       (EXTENT - 5, 10), (EXTENT + FRAME - 1, 1), (2 * EXTENT - FRAME // 2, FRAME)):
            data = pattern(n, off % 97)
            os.pwrite(fd, data, off)
            if off + n > len(model):
                model.extend(bytes(off + n - len(model)))
            model[off:off + n] = data
    finally:
        os.close(fd)
    got = readf(c.p("f"))
    c.rec("size", len(got), len(model))
    c.rec("bytes_equal", got == bytes(model), True)


@case("content.truncate_at_edges")
def _(c):
    base = pattern(EXTENT + 3 * FRAME, 9)
    res = {}
    for cut in (FRAME - 1, FRAME, FRAME + 1, EXTENT - 1, EXTENT, EXTENT + 1):
        mkfile(c.p("f"), base)
        os.truncate(c.p("f"), cut)
        os.truncate(c.p("f"), len(base))
        got = readf(c.p("f"))
        res[str(cut)] = got == base[:cut] + bytes(len(base) - cut)
    c.rec("cut_then_extend", res, {k: True for k in res})


@case("content.random_model")
def _(c):
    import random
    rnd = random.Random(1234)
    model = bytearray()
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    bad = []
    try:
        for i in range(300):
            op = rnd.random()
            if op < 0.7:
                off = rnd.randrange(0, 300000)
                n = rnd.randrange(1, 40000)
                data = bytes([rnd.randrange(1, 256)]) * n
                os.pwrite(fd, data, off)
                if off + n > len(model):
                    model.extend(bytes(off + n - len(model)))
                model[off:off + n] = data
            elif op < 0.85:
                size = rnd.randrange(0, 320000)
                os.ftruncate(fd, size)
                if size < len(model):
                    del model[size:]
                else:
                    model.extend(bytes(size - len(model)))
            else:
                off = rnd.randrange(0, 320000)
                n = rnd.randrange(1, 50000)
                if os.pread(fd, n, off) != bytes(model[off:off + n]):
                    bad.append(i)
    finally:
        os.close(fd)
    c.rec("reads_matched_model", bad, [])
    c.rec("final_equal", readf(c.p("f")) == bytes(model), True)


@case("content.sparse_fill_later")
def _(c):
    fd = os.open(c.p("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"END", 5 << 20)
        os.pwrite(fd, b"START", 0)
        os.pwrite(fd, b"MID", 3 << 20)
    finally:
        os.close(fd)
    got = readf(c.p("f"))
    exp = bytearray((5 << 20) + 3)
    exp[0:5] = b"START"
    exp[3 << 20:(3 << 20) + 3] = b"MID"
    exp[5 << 20:] = b"END"
    c.rec("bytes_equal", got == bytes(exp), True)


@case("content.many_small_appends")
def _(c):
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(1000):
            os.write(fd, b"%06d\n" % i)
    finally:
        os.close(fd)
    c.rec("content_ok", readf(c.p("f")) == b"".join(b"%06d\n" % i for i in range(1000)), True)


@case("read.short_and_unaligned")
def _(c):
    mkfile(c.p("f"), pattern(10000))
    fd = os.open(c.p("f"), os.O_RDONLY)
    try:
        c.rec("across_eof", len(os.pread(fd, 5000, 9000)), 1000)
        c.rec("unaligned", os.pread(fd, 333, 4097) == pattern(10000)[4097:4430], True)
        c.rec("at_eof", len(os.pread(fd, 10, 10000)), 0)
    finally:
        os.close(fd)


# =====================================================================
# more open / rename / link / unlink corners
# =====================================================================

@case("open.o_path")
def _(c):
    mkfile(c.p("f"), b"abc")
    fd = os.open(c.p("f"), os.O_PATH)
    try:
        c.rec("fstat", stat_fields(os.fstat(fd)))
        c.call("read", os.read, fd, 1, expect="EBADF")
        c.call("fchmod", os.fchmod, fd, 0o600, expect="EBADF")
        c.call("fgetxattr", os.getxattr, fd, "user.x", expect="EBADF")
    finally:
        os.close(fd)


@case("open.append_trunc")
def _(c):
    mkfile(c.p("f"), b"old content")
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_APPEND | os.O_TRUNC)
    try:
        os.write(fd, b"new")
    finally:
        os.close(fd)
    c.rec("content", readf(c.p("f")).decode(), "new")


@case("open.creat_via_symlinked_dir")
def _(c):
    os.mkdir(c.p("real"))
    os.symlink("real", c.p("link"))
    c.call("create", open_close, c.p("link", "f"), os.O_WRONLY | os.O_CREAT, expect="OK")
    c.rec("in_target", os.listdir(c.p("real")), ["f"])


@case("open.recreate_after_unlink")
def _(c):
    mkfile(c.p("f"), b"first", 0o600)
    os.setxattr(c.p("f"), "user.k", b"v")
    os.unlink(c.p("f"))
    open_close(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    c.stat("new", c.p("f"), {"size": 0, "mode": "0644", "nlink": 1})
    c.rec("xattrs", [x for x in os.listxattr(c.p("f")) if x.startswith("user.")], [])


@case("rename.over_symlink")
def _(c):
    mkfile(c.p("target"), b"T")
    os.symlink("target", c.p("l"))
    mkfile(c.p("f"), b"F")
    c.call("rename", os.rename, c.p("f"), c.p("l"), expect="OK")
    c.stat("l", c.p("l"), {"type": "f", "size": 1})
    c.rec("target_untouched", readf(c.p("target")).decode(), "T")


@case("rename.symlink_over_file")
def _(c):
    mkfile(c.p("f"), b"F")
    os.symlink("nowhere", c.p("l"))
    c.call("rename", os.rename, c.p("l"), c.p("f"), expect="OK")
    c.stat("f", c.p("f"), {"type": "l", "size": 7})


@case("rename.dir_over_empty_dir_same_parent")
def _(c):
    os.mkdir(c.p("a"))
    os.mkdir(c.p("b"))
    mkfile(c.p("a", "x"))
    nl = os.lstat(c.d).st_nlink
    c.call("rename", os.rename, c.p("a"), c.p("b"), expect="OK")
    c.rec("parent_nlink_delta", os.lstat(c.d).st_nlink - nl, -1)
    c.rec("names", os.listdir(c.d), ["b"])
    c.rec("content", os.listdir(c.p("b")), ["x"])


@case("rename.noreplace_dirs")
def _(c):
    os.mkdir(c.p("a"))
    os.mkdir(c.p("b"))
    c.call("over_empty_dir", renameat2, c.p("a"), c.p("b"), RENAME_NOREPLACE, expect="EEXIST")
    c.call("to_new", renameat2, c.p("a"), c.p("c"), RENAME_NOREPLACE, expect="OK")
    c.rec("names", sorted(os.listdir(c.d)), ["b", "c"])


@case("rename.same_inode_other_dirs")
def _(c):
    os.mkdir(c.p("p1"))
    os.mkdir(c.p("p2"))
    mkfile(c.p("p1", "a"), b"x")
    os.link(c.p("p1", "a"), c.p("p2", "b"))
    c.call("rename", os.rename, c.p("p1", "a"), c.p("p2", "b"), expect="OK")
    c.rec("names", [os.listdir(c.p("p1")), os.listdir(c.p("p2"))], [["a"], ["b"]])
    c.stat("nlink", c.p("p2", "b"), {"nlink": 2})


@case("rename.exchange_dirs_cross_parent")
def _(c):
    os.makedirs(c.p("p1", "a", "a1"))
    os.makedirs(c.p("p2", "b"))
    c.call("exchange", renameat2, c.p("p1", "a"), c.p("p2", "b"), RENAME_EXCHANGE, expect="OK")
    c.rec("nlinks", [os.lstat(c.p(n)).st_nlink for n in ("p1", "p2", "p1/a", "p2/b")], [3, 3, 2, 3])
    c.rec("dotdots", [os.stat(c.p("p1", "a", "..")).st_ino == os.stat(c.p("p1")).st_ino,
                      os.stat(c.p("p2", "b", "..")).st_ino == os.stat(c.p("p2")).st_ino], [True, True])
    c.rec("contents", [os.listdir(c.p("p1", "a")), os.listdir(c.p("p2", "b"))], [[], ["a1"]])


@case("rename.exchange_symlink_and_file")
def _(c):
    mkfile(c.p("f"), b"F")
    os.symlink("nowhere", c.p("l"))
    c.call("exchange", renameat2, c.p("f"), c.p("l"), RENAME_EXCHANGE, expect="OK")
    c.stat("f", c.p("f"), {"type": "l"})
    c.stat("l", c.p("l"), {"type": "f", "size": 1})


@case("rename.move_out_then_rmdir")
def _(c):
    os.makedirs(c.p("old", "child"))
    mkfile(c.p("old", "child", "f"), b"x")
    os.rename(c.p("old", "child"), c.p("child"))
    c.call("rmdir_old_parent", os.rmdir, c.p("old"), expect="OK")
    c.rec("child_ok", readf(c.p("child", "f")).decode(), "x")
    c.stat("parent", c.d, {"nlink": 3})


@case("rename.deep_tree")
def _(c):
    deep = c.p(*["l%d" % i for i in range(30)])
    os.makedirs(deep)
    mkfile(os.path.join(deep, "leaf"), b"leaf")
    os.mkdir(c.p("dst"))
    c.call("rename", os.rename, c.p("l0"), c.p("dst", "moved"), expect="OK")
    moved = c.p("dst", "moved", *["l%d" % i for i in range(1, 30)], "leaf")
    c.rec("leaf", readf(moved).decode(), "leaf")


@case("rename.special_files")
def _(c):
    os.mkfifo(c.p("p"))
    os.mknod(c.p("c"), stat.S_IFCHR | 0o644, os.makedev(1, 7))
    os.mkdir(c.p("d"))
    c.call("fifo", os.rename, c.p("p"), c.p("d", "p"), expect="OK")
    c.call("chr", os.rename, c.p("c"), c.p("d", "c"), expect="OK")
    c.stat("fifo", c.p("d", "p"), {"type": "p"})
    c.stat("chr", c.p("d", "c"), {"type": "c", "rdev": "1:7"})


@case("rename.keeps_inode_and_attrs")
def _(c):
    mkfile(c.p("f"), b"x", 0o640)
    os.chown(c.p("f"), 5, 6)
    os.utime(c.p("f"), ns=(10**9, 2 * 10**9))
    ino = os.lstat(c.p("f")).st_ino
    os.mkdir(c.p("d"))
    os.rename(c.p("f"), c.p("d", "g"))
    st = os.lstat(c.p("d", "g"))
    c.rec("same_inode", st.st_ino == ino, True)
    c.rec("attrs", [stat_fields(st), st.st_mtime_ns], [{"type": "f", "mode": "0640", "nlink": 1, "uid": 5,
                                                        "gid": 6, "size": 1}, 2 * 10**9])


@case("rename.back_and_forth")
def _(c):
    mkfile(c.p("a"), b"payload")
    os.mkdir(c.p("d"))
    for i in range(50):
        os.rename(c.p("a"), c.p("d", "b"))
        os.rename(c.p("d", "b"), c.p("a"))
    c.rec("content", readf(c.p("a")).decode(), "payload")
    c.rec("names", sorted(os.listdir(c.d)), ["a", "d"])
    c.rec("d_empty", os.listdir(c.p("d")), [])


@case("link.chmod_shows_in_both")
def _(c):
    mkfile(c.p("a"), b"x")
    os.link(c.p("a"), c.p("b"))
    os.chmod(c.p("a"), 0o600)
    os.chown(c.p("b"), 9, 9)
    c.stat("a", c.p("a"), {"mode": "0600", "uid": 9, "nlink": 2})


@case("link.unlink_all_names")
def _(c):
    mkfile(c.p("a"), b"x")
    os.link(c.p("a"), c.p("b"))
    fd = os.open(c.p("a"), os.O_RDONLY)
    try:
        os.unlink(c.p("a"))
        os.unlink(c.p("b"))
        c.rec("fstat_nlink", os.fstat(fd).st_nlink, 0)
        c.rec("still_readable", os.pread(fd, 5, 0).decode(), "x")
    finally:
        os.close(fd)
    c.rec("names", os.listdir(c.d), [])


@case("unlink.many_then_rmdir")
def _(c):
    os.mkdir(c.p("d"))
    for i in range(200):
        mkfile(c.p("d", "f%03d" % i), b"x")
    for i in range(200):
        os.unlink(c.p("d", "f%03d" % i))
    c.rec("empty", os.listdir(c.p("d")), [])
    c.call("rmdir", os.rmdir, c.p("d"), expect="OK")


@case("mkdir.deep_then_remove")
def _(c):
    names = ["d%02d" % i for i in range(40)]
    os.makedirs(c.p(*names))
    c.stat("deepest", c.p(*names), {"type": "d", "nlink": 2})
    for i in range(40, 0, -1):
        os.rmdir(c.p(*names[:i]))
    c.rec("empty", os.listdir(c.d), [])


@case("readdir.after_changes")
def _(c):
    for n in ("a", "b", "c"):
        mkfile(c.p(n))
    os.rename(c.p("a"), c.p("z"))
    os.unlink(c.p("b"))
    os.mkdir(c.p("b"))
    os.symlink("c", c.p("s"))
    c.rec("names", sorted(os.listdir(c.d)), ["b", "c", "s", "z"])


@case("readdir.unicode_names")
def _(c):
    names = ["日本語", "ÄÖÜ-äöü", "emoji-\U0001F600", "Ω", "mixed café"]
    for n in names:
        mkfile(c.p(n))
    c.rec("names", sorted(os.listdir(c.d)), sorted(names))
    c.rec("nfc_nfd_distinct", outcome(mkfile, c.p("cafe\u0301")), "OK")
    c.rec("count", len(os.listdir(c.d)), 6)


# =====================================================================
# more xattr and permission corners
# =====================================================================

@case("xattr.value_resize")
def _(c):
    mkfile(c.p("f"))
    for n in (10, 4000, 1, 0, 300):
        os.setxattr(c.p("f"), "user.v", pattern(n))
        c.rec("len_%d" % n, os.getxattr(c.p("f"), "user.v") == pattern(n), True)


@case("xattr.list_empty_and_symlink")
def _(c):
    mkfile(c.p("f"))
    os.symlink("f", c.p("l"))
    c.rec("fresh_file", [x for x in os.listxattr(c.p("f")) if x.startswith("user.")], [])
    c.call("lget_on_symlink", os.getxattr, c.p("l"), "user.x", follow_symlinks=False, expect="ENODATA")
    c.rec("llist_on_symlink", [x for x in os.listxattr(c.p("l"), follow_symlinks=False) if x.startswith("user.")],
          [])


@case("xattr.sticky_dir_other_user")
def _(c):
    os.mkdir(c.p("t"))
    os.chmod(c.p("t"), 0o1777)
    # xattr(7): in a sticky directory only the owner (or a privileged user) may write user.* attributes
    c.nobody("set_on_sticky_dir", lambda: os.setxattr(c.p("t"), "user.x", b"v"), expect="EPERM")
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    c.nobody("set_on_0777_dir", lambda: os.setxattr(c.p("w"), "user.x", b"v"), expect="OK")


@case("perm.rmdir_nonempty_as_user")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    os.mkdir(c.p("w", "full"))
    os.chmod(c.p("w", "full"), 0o777)
    mkfile(c.p("w", "full", "x"))
    c.nobody("rmdir", lambda: os.rmdir(c.p("w", "full")), expect=("ENOTEMPTY", "EEXIST"))


@case("perm.dir_without_search")
def _(c):
    os.mkdir(c.p("d"))
    os.chmod(c.p("d"), 0o766)
    c.nobody("create", lambda: open_close(c.p("d", "f"), os.O_WRONLY | os.O_CREAT), expect="EACCES")
    c.nobody("list", lambda: os.listdir(c.p("d")), expect="OK")


@case("perm.chgrp_own_file_clears_suid")
def _(c):
    mkfile(c.p("f"), b"x")
    os.chown(c.p("f"), NOBODY, 0)
    os.chmod(c.p("f"), 0o4755)
    c.nobody("chgrp", lambda: os.chown(c.p("f"), -1, NOBODY), expect="OK")
    c.stat("stat", c.p("f"), {"mode": "0755", "gid": NOBODY})


@case("perm.own_file_mode_0000")
def _(c):
    mkfile(c.p("f"), b"x", 0)
    os.chown(c.p("f"), NOBODY, NOBODY)
    c.nobody("read", lambda: readf(c.p("f")), expect="EACCES")
    c.nobody("write", lambda: open_close(c.p("f"), os.O_WRONLY), expect="EACCES")
    c.nobody("truncate", lambda: os.truncate(c.p("f"), 0), expect="EACCES")
    c.nobody("chmod", lambda: os.chmod(c.p("f"), 0o600), expect="OK")
    c.nobody("read_after_chmod", lambda: readf(c.p("f")).decode(), expect="OK")


@case("perm.fifo_and_symlink_into_private")
def _(c):
    os.mkfifo(c.p("p"), 0o600)
    os.mkdir(c.p("priv"), 0o700)
    mkfile(c.p("priv", "f"), b"x", 0o644)
    os.symlink("priv/f", c.p("l"))
    c.nobody("open_fifo", lambda: open_close(c.p("p"), os.O_RDONLY | os.O_NONBLOCK), expect="EACCES")
    c.nobody("through_symlink", lambda: readf(c.p("l")), expect="EACCES")
    c.nobody("readlink", lambda: os.readlink(c.p("l")), expect="OK")


@case("perm.dir_owner_chmod_sticky")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    c.nobody("mkdir", lambda: os.mkdir(c.p("w", "mine"), 0o755), expect="OK")
    c.nobody("chmod_1777", lambda: os.chmod(c.p("w", "mine"), 0o1777), expect="OK")
    c.nobody("utime_own_dir", lambda: os.utime(c.p("w", "mine"), ns=(10**9, 10**9)), expect="OK")
    c.stat("mine", c.p("w", "mine"), {"mode": "1777", "uid": NOBODY})
    c.rec("mtime", os.lstat(c.p("w", "mine")).st_mtime_ns, 10**9)


@case("perm.access_dirs")
def _(c):
    os.mkdir(c.p("d755"), 0o755)
    os.mkdir(c.p("d700"), 0o700)
    res = {}
    for n in ("d755", "d700"):
        for mn, m in (("R", os.R_OK), ("W", os.W_OK), ("X", os.X_OK)):
            res[n + "_" + mn] = as_user(lambda: _acc(c.p(n), m))[0]
    c.rec("matrix", res, {"d755_R": "OK", "d755_W": "EACCES", "d755_X": "OK",
                          "d700_R": "EACCES", "d700_W": "EACCES", "d700_X": "EACCES"})


@case("perm.rename_over_root_file_in_0777")
def _(c):
    os.mkdir(c.p("w"))
    os.chmod(c.p("w"), 0o777)
    mkfile(c.p("w", "rootfile"), b"r", 0o600)
    c.nobody("create", lambda: mkfile(c.p("w", "mine"), b"m"), expect="OK")
    c.nobody("rename_over", lambda: os.rename(c.p("w", "mine"), c.p("w", "rootfile")), expect="OK")
    c.stat("now", c.p("w", "rootfile"), {"uid": NOBODY, "size": 1})


# =====================================================================
# more times (with a write-back cache, the flush must not move mtime)
# =====================================================================

@case("times.mtime_stable_across_close_and_fsync")
def _(c):
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, pattern(100000))
        m1 = os.fstat(fd).st_mtime_ns
        tick()
        os.fsync(fd)
        c.rec("after_fsync", rel(os.fstat(fd).st_mtime_ns, m1), "same")
    finally:
        os.close(fd)
    tick()
    c.rec("after_close", rel(os.lstat(c.p("f")).st_mtime_ns, m1), "same")


@case("times.utime_while_dirty")
def _(c):
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, pattern(50000))
        os.utime(c.p("f"), ns=(10**9, 2 * 10**9))
        tick()
    finally:
        os.close(fd)
    st = os.lstat(c.p("f"))
    # the explicit times stay after the cached data reaches the file system
    c.rec("times_after_close", [st.st_atime_ns, st.st_mtime_ns], [10**9, 2 * 10**9])


@case("times.chmod_same_mode")
def _(c):
    mkfile(c.p("f"))
    tf = times_of(c.p("f"))
    tick()
    os.chmod(c.p("f"), 0o644)
    c.times("times", c.p("f"), tf, m="same")


@case("times.fsync_changes_nothing")
def _(c):
    mkfile(c.p("f"), b"abc")
    tf = times_of(c.p("f"))
    tick()
    fd = os.open(c.p("f"), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    c.times("times", c.p("f"), tf, m="same", c="same")


@case("times.exchange_cross_parent_and_rename_over_dir")
def _(c):
    os.makedirs(c.p("p1", "a"))
    os.makedirs(c.p("p2", "b"))
    t1, t2 = times_of(c.p("p1")), times_of(c.p("p2"))
    tick()
    os.rename(c.p("p1", "a"), c.p("p2", "b"))
    ptimes(c, "src_parent", c.p("p1"), t1)
    ptimes(c, "dst_parent", c.p("p2"), t2)


@case("times.utime_nsec_roundtrip")
def _(c):
    mkfile(c.p("f"))
    out = []
    for ns in (1, 999_999_999, 1_000_000_001, 1_700_000_000_123_456_789):
        os.utime(c.p("f"), ns=(ns, ns))
        st = os.lstat(c.p("f"))
        out.append([st.st_atime_ns, st.st_mtime_ns] == [ns, ns])
    c.rec("exact", out, [True] * 4)


@case("times.truncate_via_open_fd_unchanged_size")
def _(c):
    mkfile(c.p("f"), b"abcdef")
    tf = times_of(c.p("f"))
    tick()
    open_close(c.p("f"), os.O_WRONLY | os.O_CREAT)
    c.times("open_without_trunc", c.p("f"), tf, m="same", c="same")
    tf = times_of(c.p("f"))
    tick()
    open_close(c.p("f"), os.O_RDONLY)
    c.times("open_rdonly", c.p("f"), tf, m="same", c="same")


# =====================================================================
# runner
# =====================================================================

def run(args):
    os.umask(0o022)
    if os.geteuid() != 0:
        sys.exit("posix_suite.py run: must run as root")
    root = os.path.abspath(args.dir)
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    if os.listdir(root):
        sys.exit("posix_suite.py run: %s is not empty" % root)
    other = None
    if args.other:
        other = os.path.abspath(args.other)
        os.makedirs(other, exist_ok=True)
        os.chmod(other, 0o755)
    reach = as_user(lambda: os.listdir(root))[0]
    if reach != "OK":
        sys.exit("posix_suite.py run: uid %d cannot list %s (%s): make every folder above it traversable"
                 % (NOBODY, root, reach))
    out = sys.stdout
    n = 0
    t0 = time.monotonic()
    for name, fn, needs_other in CASES:
        if args.only and not any(s in name for s in args.only):
            continue
        if needs_other and other is None:
            continue
        if args.list:
            print(name)
            continue
        ctx = Ctx(root, name, other)
        try:
            fn(ctx)
        except Exception as e:  # noqa: BLE001 - a crashed case is an observation and a failure
            ctx.obs["exception"] = "%s: %s" % (type(e).__name__, e)
            ctx.spec.append("exception %s: %s" % (type(e).__name__, e))
        finally:
            os.chdir("/")
        out.write(json.dumps({"case": name, "obs": ctx.obs, "spec": ctx.spec, "checks": ctx.checks}) + "\n")
        out.flush()
        n += 1
    if not args.list:
        print("# %d cases in %.1f s" % (n, time.monotonic() - t0), file=sys.stderr)


# --------------------------------------------------------------------- compare

def load(path):
    res = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                r = json.loads(line)
                res[r["case"]] = r
    return res


def load_allow(path, mode=None):
    """Lines "[MODE] CASE[:KEY]  reason"; # comments. An entry with a [MODE]
    tag holds only for a mount in that mode (compare --mode). Returns
    {entry: reason}."""
    allow = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tag = None
            if line.startswith("["):
                end = line.find("]")
                if end < 0:
                    raise SystemExit("allow-list line with an unclosed [mode]: " + line)
                tag, line = line[1:end], line[end + 1:].strip()
            parts = line.split(None, 1)
            if len(parts) < 2 or not parts[1].strip():
                raise SystemExit("allow-list line without a reason: " + line)
            if tag is not None and tag != mode:
                continue
            allow[parts[0]] = parts[1].strip()
    return allow


def compare(args):
    ref, test = load(args.ref), load(args.test)
    allow = load_allow(args.allow, args.mode)
    used = set()
    lines = []

    def emit(kind, what, detail=""):
        lines.append("%s\t%s\t%s" % (kind, what, detail.replace("\t", " ").replace("\n", " | ")))

    n_ref_spec = n_test_spec = 0
    for name, r in ref.items():
        for s in r["spec"]:
            emit("FAIL", "plain folder: %s: %s" % (name, s), "the expectation does not hold on the reference folder")
        n_ref_spec += len(r["spec"])
    for name, r in test.items():
        for s in r["spec"]:
            emit("FAIL", "coffer: %s: %s" % (name, s), "a POSIX/Linux expectation does not hold on coffer")
        n_test_spec += len(r["spec"])
    identical = differing_allowed = 0
    for name in list(ref) + [n for n in test if n not in ref]:
        if name not in ref or name not in test:
            emit("FAIL", "%s: case ran on only one side" % name, "missing on " + ("coffer" if name in ref else "plain"))
            continue
        ro, to = ref[name]["obs"], test[name]["obs"]
        keys = list(ro) + [k for k in to if k not in ro]
        diff = [k for k in keys if ro.get(k, "<absent>") != to.get(k, "<absent>")]
        if not diff:
            identical += 1
            continue
        unexplained = []
        for k in diff:
            entry = name + ":" + k
            if entry in allow:
                used.add(entry)
            elif name in allow:
                used.add(name)
            else:
                unexplained.append(k)
        if unexplained:
            emit("FAIL", "%s differs from the plain folder" % name,
                 "; ".join("%s: plain %s, coffer %s" % (k, json.dumps(ro.get(k, "<absent>")),
                                                        json.dumps(to.get(k, "<absent>"))) for k in unexplained))
        else:
            differing_allowed += 1
            emit("NOTE", "%s: known difference (%s)" % (name, "; ".join(
                "%s: plain %s, coffer %s" % (k, json.dumps(ro.get(k)), json.dumps(to.get(k))) for k in diff)),
                 "")
    for entry, reason in allow.items():
        if entry not in used:
            case_name = entry.split(":")[0]
            if case_name not in ref and case_name not in test:
                emit("FAIL", "allow-list entry %s names no case that ran" % entry, reason)
            else:
                emit("FAIL", "allow-list entry %s no longer differs: remove it" % entry, reason)
    for side, res, nfail in (("plain folder", ref, n_ref_spec), ("coffer", test, n_test_spec)):
        emit("PASS" if nfail == 0 else "FAIL",
             "%s: all %d POSIX/Linux expectations of %d cases hold" % (side, sum(r.get("checks", 0) for r in res.values()),
                                                                        len(res)), "%d failed" % nfail)
    emit("PASS" if len(ref) >= 100 and len(ref) == len(test) else "FAIL",
         "both sides ran the same %d cases" % len(ref), "coffer ran %d" % len(test))
    emit("PASS", "coffer vs plain folder: %d cases identical, %d differ only as allow-listed"
         % (identical, differing_allowed))
    print("\n".join(lines))


# --------------------------------------------------------------------- snapshot

def snapshot(args):
    root = os.path.abspath(args.dir)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            entries.append(os.path.join(dirpath, n))
    out = []
    for p in entries:
        st = os.lstat(p)
        d = stat_fields(st)
        d["mtime"] = st.st_mtime_ns
        d["ctime"] = st.st_ctime_ns
        if d["type"] != "d":
            d["atime"] = st.st_atime_ns
        if d["type"] == "l":
            d["target"] = os.readlink(p).encode("utf-8", "surrogateescape").hex()
        if d["type"] in ("f", "d"):
            try:
                d["xattrs"] = {x: os.getxattr(p, x).hex() for x in sorted(os.listxattr(p)) if x.startswith("user.")}
            except OSError as e:
                d["xattrs"] = errname(e.errno)
        out.append([os.path.relpath(p, root).encode("utf-8", "surrogateescape").hex(), d])
    for rel_hex, d in out:
        if d["type"] == "f" and d["size"] <= 64 << 20:
            p = os.path.join(root, bytes.fromhex(rel_hex).decode("utf-8", "surrogateescape"))
            try:
                d["sha256"] = hashlib.sha256(readf(p, O_NOATIME)).hexdigest()
            except OSError as e:
                d["sha256"] = errname(e.errno)
    for rel_hex, d in out:
        print(json.dumps([bytes.fromhex(rel_hex).decode("utf-8", "backslashreplace"), d], sort_keys=True))


SNAP_FIELDS = ("type", "mode", "uid", "gid", "nlink", "size", "rdev", "target", "xattrs", "sha256",
               "mtime", "ctime", "atime")


def snapdiff(args):
    """Per field: PASS if every entry kept it across the remount, else FAIL with examples."""
    def load_snap(path):
        with open(path) as f:
            return dict((json.loads(line)[0], json.loads(line)[1]) for line in f if line.strip())
    a, z = load_snap(args.before), load_snap(args.after)
    lines = []
    missing = sorted(set(a) - set(z))
    extra = sorted(set(z) - set(a))
    lines.append(("FAIL" if missing or extra else "PASS",
                  "the same %d entries after the remount" % len(a),
                  "missing: %s; new: %s" % (missing[:5], extra[:5])))
    for field in SNAP_FIELDS:
        have = [p for p in a if p in z and field in a[p]]
        bad = [p for p in have if a[p][field] != z[p].get(field)]
        if bad:
            ex = "first: %s: %s -> %s; all: %s" % (bad[0], a[bad[0]][field], z[bad[0]].get(field),
                                                   " ".join(bad[:40]) + (" ..." if len(bad) > 40 else ""))
            lines.append(("FAIL", "%s of %d of %d entries changed across unmount/mount" % (field, len(bad), len(have)),
                          ex))
        else:
            lines.append(("PASS", "%s of all %d entries kept across unmount/mount" % (field, len(have)), ""))
    for kind, what, detail in lines:
        print("%s\t%s\t%s" % (kind, what, detail))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--other", help="a folder on another file system (EXDEV cases)")
    r.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    r.add_argument("--list", action="store_true", help="list the case names")
    c = sub.add_parser("compare")
    c.add_argument("ref")
    c.add_argument("test")
    c.add_argument("allow")
    c.add_argument("--mode", help="the mount's mode: allow-list entries tagged [MODE] apply")
    s = sub.add_parser("snapshot")
    s.add_argument("dir")
    d = sub.add_parser("snapdiff")
    d.add_argument("before")
    d.add_argument("after")
    args = ap.parse_args()
    {"run": run, "compare": compare, "snapshot": snapshot, "snapdiff": snapdiff}[args.cmd](args)


if __name__ == "__main__":
    main()
