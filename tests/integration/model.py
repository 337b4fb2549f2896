#!/usr/bin/env python3
"""Random-operation model test (fsx/fsstress style) for coffer.

One seeded random sequence of operations is applied to two trees side by
side: the coffer mount (side 0, "coffer") and a plain directory on the same
disk (side 1, "plain", the oracle). Every operation runs on both; its result
(return values, bytes read, or the errno it failed with) must be the same.
After each operation the paths it touched are compared (type, mode, link
count, size, symlink target, mtime where it was set explicitly, and the bytes
around a write); every COMPARE_EVERY steps the whole tree is compared (files
whose bytes changed since are read in full), and at checkpoints ("sync",
"remount" on the same --state, "remount" on a NEW --state = a new device
that rebuilds from the vault) every file is read in full.

Sync and remount are done by the shell script (tests/integration/test_model.sh
uses lib.sh's coffer_mount/coffer_unmount): this program writes a request
line "REQ sync" / "REQ remount same" / "REQ remount new" to stdout and reads
the reply ("OK" or "ERR <text>") from stdin. It ends with one line
"RESULT ok ..." or "RESULT fail ..." on stdout; everything else goes to stderr.

The operations are generated as data (a JSON list each), from the seed and the
state of the plain tree only, so a seed replays exactly; --trace writes them,
--replay runs a (possibly shortened) trace instead of generating one.
"""

import argparse
import collections
import ctypes
import errno
import json
import mmap
import os
import random
import stat
import sys
import time

KiB = 1024
MiB = 1024 * KiB
BLOCK = 16 * KiB          # coffer's block (sealed frame)
EXTENT = 4 * MiB          # coffer's extent (content object)
MAX_FILE = 8 * MiB        # no file grows past this
MAX_NONDIR = 60           # files + symlinks (names) at most
MAX_DIRS = 16
MAX_DEPTH = 3             # new names are made in folders at most this deep
TOTAL_BUDGET = 24 * MiB   # sum of file sizes before growing ops are held back
POOL_SLOTS = 6            # files kept open across operations (fd pairs)
COMPARE_EVERY = 500       # whole-tree compare (changed files read in full)
CP_MIN, CP_MAX = 1200, 3000   # steps between checkpoints (sync / remount)

NAMES = ["a", "b", "c", "d", "e", "f", "g", "h", "k.txt", "name with space",
         "\u00e9t\u00e9", "N" * 255]
XATTRS = ["user.a", "user.b", "user.coffer.model", "user." + "x" * 120]
MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o000, 0o640, 0o4755, 0o2755,
         0o1777, 0o6711, 0o777]
NOWHERE = "/nonexistent-coffer-model"
EXT4_TIME_MAX = 15032385535  # the latest second ext4 stores (2446-05-10)

O_FLAGS = {"rw": os.O_RDWR, "creat": os.O_RDWR | os.O_CREAT}
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_ZERO_RANGE = 0x01, 0x02, 0x10
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
SIDES = ("coffer", "plain")

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
libc.fallocate.restype = ctypes.c_int
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.renameat2.restype = ctypes.c_int


def c_fallocate(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def c_renameat2(a, b, flags):
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Mismatch(Exception):
    pass


class Skip(Exception):
    """An operation of a replayed (shortened) trace that no longer applies."""


def ename(e):
    return errno.errorcode.get(e, str(e))


def short(v, limit=300):
    """A printable summary of a result (bytes are summarised)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        import hashlib
        return "<%d bytes sha1 %s>" % (len(b), hashlib.sha1(b).hexdigest()[:12])
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "err":
        return "error " + ename(v[1])
    if isinstance(v, (list, tuple)):
        s = "(" + ", ".join(short(x, limit) for x in v) + ")"
    else:
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def first_diff(a, b):
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return hi


class Model:
    def __init__(self, args):
        self.roots = (os.path.abspath(args.mnt), os.path.abspath(args.ref))
        self.seed = args.seed
        self.nops = args.ops
        self.verbose = args.verbose
        self.wide_times = args.wide_times
        self.rng = random.Random(args.seed)
        # Data comes from one pool of random bytes (slices at random offsets).
        self.pool = random.Random(args.seed * 1000003 + 17).randbytes(MAX_FILE + 2 * MiB)
        self.slots = [None] * POOL_SLOTS      # (fd coffer, fd plain, path)
        self.explicit = set()  # plain inodes whose mtime was set with utime since
        self.dirty = set()     # plain inodes whose bytes changed since the last compare
        self.history = collections.deque(maxlen=30)
        self.trace = open(args.trace, "w") if args.trace else None
        self.step = 0
        self.stats = collections.Counter()
        self.errors = collections.Counter()
        self.compares = 0
        self.checkpoints = []
        self.total_size = 0
        self.cur_op = None
        self.op_time = collections.Counter()

    # ------------------------------------------------------------ helpers
    def P(self, s, rel):
        return self.roots[s] + "/" + rel if rel else self.roots[s]

    def log(self, msg):
        sys.stderr.write("[model seed %d] %s\n" % (self.seed, msg))
        sys.stderr.flush()

    def fail(self, what, c=None, p=None):
        lines = [what]
        if c is not None or p is not None:
            lines.append("  coffer: " + short(c, 600))
            lines.append("  plain:  " + short(p, 600))
        raise Mismatch("\n".join(lines))

    def both(self, fn, what=None):
        """Runs fn(side) on coffer then on plain; the results (or errnos) must
        be equal. Returns the plain side's result: ("ok", value) / ("err", errno)."""
        out = []
        for s in (0, 1):
            try:
                out.append(("ok", fn(s)))
            except OSError as e:
                out.append(("err", e.errno))
        if out[0] != out[1]:
            a, b = out
            if a[0] == "ok" and b[0] == "ok" and isinstance(a[1], (bytes, bytearray)):
                i = first_diff(a[1], b[1])
                self.fail("%s: results differ (lengths %d / %d, first difference at offset %d of the result)"
                          % (what or "result", len(a[1]), len(b[1]), i), a, b)
            self.fail((what or "result") + " differs", a, b)
        if out[1][0] == "err":
            self.errors[ename(out[1][1])] += 1
        return out[1]

    def ino(self, rel, follow=True):
        try:
            return os.stat(self.P(1, rel), follow_symlinks=follow).st_ino
        except OSError:
            return None

    def ino_tgt(self, tgt):
        if tgt[0] == "fd":
            sl = self.slots[tgt[1]]
            return os.fstat(sl[1]).st_ino if sl else None
        return self.ino(tgt[1])

    def size_tgt(self, tgt):
        try:
            if tgt[0] == "fd":
                return os.fstat(self.slots[tgt[1]][1]).st_size
            return os.stat(self.P(1, tgt[1])).st_size
        except (OSError, TypeError):
            return 0

    def fd_of(self, s, tgt, flags, mode=0o644):
        """(fd, must_close) for a target: ["fd", slot] or ["path", rel]."""
        if tgt[0] == "fd":
            sl = self.slots[tgt[1]]
            if sl is None:
                raise Skip()
            return sl[s], False
        return os.open(self.P(s, tgt[1]), flags, mode), True

    def parents_of(self, rels):
        """Plain inodes of the folders holding these names (also through the
        symlinks they follow): their mtime changes with the entries."""
        inos = set()
        for rel in rels:
            if rel is None:
                continue
            for cand in (self.P(1, rel), os.path.realpath(self.P(1, rel))):
                for d in (os.path.dirname(cand), cand):
                    try:
                        st = os.lstat(d)
                    except OSError:
                        continue
                    if d == cand and not stat.S_ISDIR(st.st_mode):
                        continue
                    inos.add(st.st_ino)
        return inos

    # ------------------------------------------------------------ namespace
    def refresh(self):
        """The namespace of the plain tree (the op generator's view)."""
        files, dirs, links = [], [], []
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.P(1, rel)) as it:
                for e in it:
                    r = rel + "/" + e.name if rel else e.name
                    if e.is_dir(follow_symlinks=False):
                        dirs.append(r)
                        stack.append(r)
                    elif e.is_symlink():
                        links.append(r)
                    else:
                        files.append(r)
        self.files = sorted(files)
        self.dirs = [""] + sorted(dirs)
        self.links = sorted(links)
        self.nondir = sorted(files + links)
        self.all = sorted(files + links + dirs)

    def update_total_size(self):
        total = 0
        for rel in self.files:
            try:
                total += os.lstat(self.P(1, rel)).st_size
            except OSError:
                pass
        self.total_size = total

    def can_create(self):
        return len(self.nondir) < MAX_NONDIR

    def new_path(self):
        r = self.rng
        parents = [d for d in self.dirs if d.count("/") + (1 if d else 0) < MAX_DEPTH]
        parent = r.choice(parents)
        name = r.choice(NAMES)
        return parent + "/" + name if parent else name

    def weird_path(self):
        r = self.rng
        x = r.random()
        if x < 0.4 and self.nondir:
            return r.choice(self.nondir) + "/" + r.choice(NAMES)      # ENOTDIR / through a symlink
        if x < 0.7:
            return "missing-dir/" + r.choice(NAMES)                 # ENOENT
        return r.choice(self.dirs[1:] or ["missing"]) + "/" + r.choice(NAMES) + "/" + r.choice(NAMES)

    def pick(self, pool, p_exist=0.85):
        r = self.rng
        if r.random() < 0.03:
            return self.weird_path()
        if pool and r.random() < p_exist:
            return r.choice(pool)
        return self.new_path()

    def file_target(self, create_ok=True, p_fd=0.3):
        r = self.rng
        open_slots = [i for i, s in enumerate(self.slots) if s]
        if open_slots and r.random() < p_fd:
            return ["fd", r.choice(open_slots)]
        x = r.random()
        if x < 0.07 and self.links:
            return ["path", r.choice(self.links)]
        if x < 0.10:
            return ["path", self.pick(self.dirs[1:] + self.nondir, 0.5)]
        if self.files and (x < 0.93 or not create_ok):
            return ["path", r.choice(self.files)]
        return ["path", self.new_path()]

    # ------------------------------------------------------------ sizes
    def gen_off(self, size):
        r = self.rng
        x = r.random()
        grow = self.total_size < TOTAL_BUDGET
        if x < 0.25:
            off = r.randint(0, size)
        elif x < 0.42:
            k = r.randint(0, max(1, (size + 4 * BLOCK) // BLOCK))
            off = k * BLOCK + r.randint(-40, 40)
        elif x < 0.52:
            off = r.choice([EXTENT, 2 * EXTENT - BLOCK, EXTENT - BLOCK, EXTENT + BLOCK]) + r.randint(-3000, 3000)
        elif x < 0.67:
            off = size + r.randint(-20, 20)
        elif x < 0.77 and grow:
            off = size + r.randint(BLOCK, 3 * MiB)              # a hole
        else:
            off = r.randint(0, 64 * KiB)
        if not grow:
            off = min(off, size)
        return max(0, min(off, MAX_FILE - 1))

    def gen_len(self):
        r = self.rng
        x = r.random()
        if x < 0.35:
            n = r.randint(1, 100)
        elif x < 0.60:
            n = r.randint(100, 20000)
        elif x < 0.78:
            n = r.randint(1, 4) * BLOCK + r.randint(-5, 5)
        elif x < 0.98:
            n = r.randint(20000, 300 * KiB)
        else:
            n = r.randint(300 * KiB, EXTENT + 300 * KiB)
        return max(1, n)

    def gen_size(self, size):
        r = self.rng
        x = r.random()
        grow = self.total_size < TOTAL_BUDGET
        if x < 0.35:
            n = r.randint(0, size)
        elif x < 0.5:
            n = 0 if r.random() < 0.3 else size
        elif x < 0.7:
            n = r.randint(0, (size + 4 * BLOCK) // BLOCK) * BLOCK + r.randint(-2, 2)
        elif x < 0.8:
            n = r.choice([EXTENT, EXTENT - 1, EXTENT + 1, 2 * EXTENT - BLOCK]) + r.randint(-1, 1) * r.randint(0, BLOCK)
        else:
            n = size + r.randint(1, 2 * MiB)
        if not grow:
            n = min(n, size)
        return max(0, min(n, MAX_FILE))

    def data_args(self, off, n):
        n = max(0, min(n, MAX_FILE - off))
        poff = self.rng.randint(0, len(self.pool) - n)
        return poff, n

    # ------------------------------------------------------------ generator
    def gen(self):
        name = self.rng.choices(GEN_NAMES, GEN_WEIGHTS)[0]
        return getattr(self, "gen_" + name)()

    def gen_write(self):
        tgt = self.file_target(self.can_create())
        off = self.gen_off(self.size_tgt(tgt))
        poff, n = self.data_args(off, self.gen_len())
        creat = self.can_create() and self.rng.random() < 0.7
        return ["write", tgt, off, poff, n, creat]

    def gen_append(self):
        tgt = self.file_target(self.can_create(), p_fd=0)
        n = self.gen_len() if self.rng.random() < 0.5 else self.rng.randint(1, 300)
        size = self.size_tgt(tgt)
        if size + n > MAX_FILE or self.total_size >= TOTAL_BUDGET:
            n = max(0, min(n, MAX_FILE - size, 64))
        poff = self.rng.randint(0, len(self.pool) - n)
        return ["append", tgt[1], poff, n, self.rng.choice([0, 1, size // 2, MAX_FILE]),
                self.can_create() and self.rng.random() < 0.3]

    def gen_read(self):
        tgt = self.file_target(False, p_fd=0.4)
        size = self.size_tgt(tgt)
        r = self.rng
        off = self.gen_off(size) if r.random() < 0.6 else r.randint(0, size + 100)
        if r.random() < 0.05:
            off = size + r.randint(0, 3 * MiB)
        return ["read", tgt, off, self.gen_len()]

    def gen_truncate(self):
        tgt = self.file_target(False)
        return ["truncate", tgt, self.gen_size(self.size_tgt(tgt))]

    def gen_fallocate(self):
        r = self.rng
        tgt = self.file_target(False)
        mode = r.choices([0, FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE,
                          FALLOC_ZERO_RANGE, FALLOC_ZERO_RANGE | FALLOC_KEEP_SIZE,
                          FALLOC_PUNCH_HOLE, FALLOC_ZERO_RANGE | FALLOC_PUNCH_HOLE],
                         [4, 3, 6, 4, 3, 0.3, 0.2])[0]
        size = self.size_tgt(tgt)
        off = self.gen_off(size)
        n = self.gen_len()
        if r.random() < 0.02:
            n = 0                                              # EINVAL
        n = min(n, MAX_FILE - off)
        if self.total_size >= TOTAL_BUDGET and not mode & (FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE):
            n = max(0, min(n, size - off)) or 1
        posix = mode == 0 and r.random() < 0.3
        return ["fallocate", tgt, mode, off, n, posix]

    def gen_mmap(self):
        tgt = self.file_target(False, p_fd=0.3)
        size = self.size_tgt(tgt)
        r = self.rng
        off = r.randint(0, max(0, size - 1))
        if r.random() < 0.3:
            off = max(0, min(size - 1, (off // BLOCK) * BLOCK - r.randint(0, 20)))
        n = r.choice([r.randint(1, 200), r.randint(1, 3 * BLOCK), r.randint(1, 300 * KiB)])
        poff = r.randint(0, len(self.pool) - n)
        return ["mmap", tgt, off, poff, n, r.random() < 0.75]

    def gen_creat(self):
        r = self.rng
        path = self.pick(self.nondir, 0.4) if self.can_create() else self.pick(self.nondir, 1.0)
        return ["creat", path, r.choice(["excl", "trunc", "plain"]), r.choice(MODES)]

    def gen_rename(self):
        r = self.rng
        x = r.random()
        flags = 0 if x < 0.65 else (RENAME_NOREPLACE if x < 0.8 else RENAME_EXCHANGE)
        src = self.pick(self.all, 0.95)
        dst = self.pick(self.all, 0.5 if flags != RENAME_EXCHANGE else 0.9)
        y = r.random()
        if y < 0.05:
            dst = src + "/" + r.choice(NAMES)                # into itself / ENOTDIR
        elif y < 0.08 and "/" in src:
            dst = src.rsplit("/", 1)[0]                      # over its own folder
        elif y < 0.18:
            pair = self.same_inode_pair()                    # two names of one inode
            if pair:
                src, dst = pair
        return ["rename", src, dst, flags]

    def same_inode_pair(self):
        by_ino = collections.defaultdict(list)
        for rel in self.nondir:
            try:
                by_ino[os.lstat(self.P(1, rel)).st_ino].append(rel)
            except OSError:
                pass
        groups = [g for g in by_ino.values() if len(g) > 1]
        if not groups:
            return None
        return self.rng.sample(self.rng.choice(groups), 2)

    def gen_link(self):
        src = self.pick(self.nondir + self.dirs[1:2], 0.95)
        dst = self.pick(self.all, 0.1) if self.can_create() else self.pick(self.all, 1.0)
        return ["link", src, dst]

    def gen_unlink(self):
        return ["unlink", self.pick(self.nondir + self.dirs[1:2], 0.9)]

    def gen_mkdir(self):
        ok = len(self.dirs) - 1 < MAX_DIRS
        return ["mkdir", self.pick(self.all, 0.15 if ok else 1.0), self.rng.choice(MODES + [0o755] * 4)]

    def gen_rmdir(self):
        r = self.rng
        path = self.pick(self.dirs[1:], 0.9) if r.random() < 0.9 else self.pick(self.nondir)
        return ["rmdir", path]

    def gen_symlink(self):
        r = self.rng
        x = r.random()
        if x < 0.5:
            target = "/".join(r.choice(NAMES) for _ in range(r.randint(1, 2)))
        elif x < 0.65:
            target = NOWHERE + "/" + r.choice(NAMES)
        elif x < 0.75:
            target = "."
        else:
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 _-+=.:,;!~"
            target = "".join(r.choice(alphabet) for _ in range(r.randint(1, r.choice([20, 300, 1000]))))
            if target.strip(".") == "":
                target = "dots" + target
        path = self.pick(self.all, 0.1) if self.can_create() else self.pick(self.all, 1.0)
        return ["symlink", target, path]

    def any_target(self, p_fd=0.15):
        r = self.rng
        open_slots = [i for i, s in enumerate(self.slots) if s]
        if open_slots and r.random() < p_fd:
            return ["fd", r.choice(open_slots)]
        return ["path", self.pick(self.all + [""], 0.95)]

    def gen_chmod(self):
        return ["chmod", self.any_target(), self.rng.choice(MODES + [self.rng.randint(0, 0o7777)])]

    def gen_utime(self):
        r = self.rng
        tgt = self.any_target()
        if r.random() < 0.1:
            return ["utime", tgt, None, None, True]
        at = self.gen_time()
        mt = self.gen_time()
        return ["utime", tgt, at, mt, r.random() < 0.7]

    def gen_time(self):
        """A time in ns: mostly 1970..2106, some before 1970, some up to the
        end of what a signed 64-bit count of ns holds (2262); with
        --wide-times also 2262..2446, which ext4 stores exactly."""
        r = self.rng
        x = r.random()
        ns = r.choice([0, r.randint(0, 10 ** 9 - 1)])
        if x < 0.85:
            sec = r.randint(0, 2 ** 32)
        elif x < 0.95:
            sec = r.randint(-2 ** 31, -1)
        elif self.wide_times:
            sec = r.randint(2 ** 63 // 10 ** 9 + 1, EXT4_TIME_MAX)
        else:
            sec = r.randint(2 ** 32, 2 ** 63 // 10 ** 9 - 1)
        return sec * 10 ** 9 + ns

    def gen_setxattr(self):
        r = self.rng
        n = r.choice([0, r.randint(1, 30), r.randint(1, 500)])
        poff = r.randint(0, len(self.pool) - n)
        flags = r.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
        return ["setxattr", self.any_target(), r.choice(XATTRS), poff, n, flags, r.random() < 0.8]

    def gen_removexattr(self):
        return ["removexattr", self.any_target(), self.rng.choice(XATTRS), self.rng.random() < 0.8]

    def gen_getxattr(self):
        r = self.rng
        if r.random() < 0.5:
            return ["listxattr", self.any_target(), r.random() < 0.8]
        return ["getxattr", self.any_target(), r.choice(XATTRS), r.random() < 0.8]

    def gen_stat(self):
        return ["stat", self.pick(self.all + [""], 0.95), self.rng.random() < 0.5]

    def gen_readdir(self):
        return ["readdir", self.pick(self.dirs + self.dirs[:1], 0.9)]

    def gen_readlink(self):
        return ["readlink", self.pick(self.links + self.files[:1], 0.9)]

    def gen_fsync(self):
        r = self.rng
        if r.random() < 0.25:
            return ["fsyncdir", self.pick(self.dirs, 0.95)]
        return ["fsync", self.file_target(False, p_fd=0.5), r.random() < 0.4]

    def gen_open(self):
        r = self.rng
        slot = r.randrange(POOL_SLOTS)
        if self.slots[slot] and r.random() < 0.5:
            return ["close", slot]
        path = self.pick(self.files + self.links, 0.9) if r.random() < 0.9 else self.pick(self.all, 0.9)
        return ["open", slot, path, self.can_create() and r.random() < 0.3]

    def gen_close(self):
        open_slots = [i for i, s in enumerate(self.slots) if s]
        if not open_slots:
            return self.gen_open()
        return ["close", self.rng.choice(open_slots)]

    # ------------------------------------------------------------ checks
    def meta(self, s, path, follow=False):
        st = os.stat(path, follow_symlinks=follow)
        m = [stat.filemode(st.st_mode), st.st_nlink, st.st_uid, st.st_gid]
        if not stat.S_ISDIR(st.st_mode):
            m.append(st.st_size)
        if stat.S_ISLNK(st.st_mode):
            m.append(os.readlink(path))
        return m, st

    def compare_meta(self, rel, follow=False, what="metadata"):
        """Compares one path's metadata (or the error of stat) on both trees.
        Returns (coffer stat, plain stat) or None if both fail alike."""
        res = []
        for s in (0, 1):
            try:
                res.append(self.meta(s, self.P(s, rel), follow))
            except OSError as e:
                res.append((("err", e.errno), None))
        (mc, sc), (mp, sp) = res
        if sp is not None and sc is not None and sp.st_ino in self.explicit:
            mc = mc + ["mtime_ns=%d" % sc.st_mtime_ns]
            mp = mp + ["mtime_ns=%d" % sp.st_mtime_ns]
        if mc != mp:
            self.fail("%s of %r differs" % (what, rel), mc, mp)
        return (sc, sp) if sp is not None else None

    def compare_fd_meta(self, fdc, fdp, what):
        sc, sp = os.fstat(fdc), os.fstat(fdp)
        mc = [stat.filemode(sc.st_mode), sc.st_nlink, sc.st_size]
        mp = [stat.filemode(sp.st_mode), sp.st_nlink, sp.st_size]
        if sp.st_ino in self.explicit:
            mc.append(sc.st_mtime_ns)
            mp.append(sp.st_mtime_ns)
        if mc != mp:
            self.fail(what + ": fstat differs (mode, nlink, size[, mtime])", mc, mp)
        return sp

    def compare_ranges(self, fdc, fdp, ranges, what):
        for lo, hi in ranges:
            if hi <= lo:
                continue
            a = os.pread(fdc, hi - lo, lo)
            b = os.pread(fdp, hi - lo, lo)
            if a != b:
                i = first_diff(a, b)
                self.fail("%s: bytes differ at file offset %d (range %d..%d read %d / %d bytes)"
                          % (what, lo + i, lo, hi, len(a), len(b)),
                          a[i:i + 32].hex(), b[i:i + 32].hex())

    def window(self, lo, hi, size):
        """Ranges to read back after a change of [lo, hi): around it and the end."""
        lo = max(0, lo - 4096)
        hi = min(max(hi + 4096, lo), size + 4096)
        out = []
        if hi - lo <= 256 * KiB:
            out.append((lo, hi))
        else:
            mid = (lo + hi) // 2
            out += [(lo, lo + 48 * KiB), (mid - 16 * KiB, mid + 16 * KiB), (hi - 48 * KiB, hi)]
        if size > 0:
            out.append((max(0, size - 8192), size + 100))
        return out

    def data_op(self, tgt, flags, body, what):
        """Runs body(fd) on both sides, on the slot's descriptors or on the
        target path opened with flags. On odd steps the path's descriptors
        stay open for check_data (the read-back then goes through the same
        open file; on even steps through a fresh open, which makes FUSE drop
        its cached pages). Returns (result, held descriptors)."""
        keep = tgt[0] == "path" and self.step % 2 == 1
        held = [None, None]

        def fn(s):
            fd, close = self.fd_of(s, tgt, flags)
            try:
                return body(fd)
            finally:
                if close:
                    if keep:
                        held[s] = fd
                    else:
                        os.close(fd)
        try:
            r = self.both(fn, what)
        except BaseException:
            self.close_held(held)
            raise
        if r[0] != "ok":
            self.close_held(held)
            held = None
        return r, held

    @staticmethod
    def close_held(held):
        for i, f in enumerate(held or ()):
            if f is not None:
                os.close(f)
                held[i] = None

    def check_data(self, tgt, lo, hi, what, held=None):
        """After a change of bytes [lo, hi) of a file: sizes and the bytes
        around it, read back through the open pair (slot, or the descriptors
        the operation used) or through fresh descriptors."""
        if tgt[0] == "fd" or held and None not in held:
            fdc, fdp = self.slots[tgt[1]][:2] if tgt[0] == "fd" else held
            try:
                ino = os.fstat(fdp).st_ino
                self.dirty.add(ino)
                self.explicit.discard(ino)
                sp = self.compare_fd_meta(fdc, fdp, what)
                self.compare_ranges(fdc, fdp, self.window(lo, hi, sp.st_size), what)
            finally:
                self.close_held(held)
            return
        self.close_held(held)
        fds, errs = [None, None], [None, None]
        for s in (0, 1):
            try:
                fds[s] = os.open(self.P(s, tgt[1]), os.O_RDONLY)
            except OSError as e:
                errs[s] = e.errno
        try:
            if errs != [None, None]:
                if errs[0] != errs[1]:
                    self.fail(what + ": reopening %r for the check" % tgt[1],
                              ("err", errs[0]) if errs[0] else "opened", ("err", errs[1]) if errs[1] else "opened")
                return
            ino = os.fstat(fds[1]).st_ino
            self.dirty.add(ino)
            self.explicit.discard(ino)
            sp = self.compare_fd_meta(fds[0], fds[1], what)
            if stat.S_ISREG(sp.st_mode):
                self.compare_ranges(fds[0], fds[1], self.window(lo, hi, sp.st_size), what)
        finally:
            for f in fds:
                if f is not None:
                    os.close(f)

    def walk(self, s):
        out = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.P(s, rel)) as it:
                for e in it:
                    r = rel + "/" + e.name if rel else e.name
                    d = e.is_dir(follow_symlinks=False)
                    out[r] = "d" if d else ("l" if e.is_symlink() else "f")
                    if d:
                        stack.append(r)
        return out

    def xattrs(self, s, rel):
        p = self.P(s, rel)
        names = sorted(os.listxattr(p, follow_symlinks=False))
        return [(n, os.getxattr(p, n, follow_symlinks=False)) for n in names]

    def read_all(self, fd):
        size = os.fstat(fd).st_size
        chunks, off = [], 0
        while True:
            b = os.pread(fd, 4 * MiB, off)
            if not b:
                break
            chunks.append(b)
            off += len(b)
            if off > size + 8 * MiB:
                break
        return b"".join(chunks)

    def compare_content(self, rel, what):
        fds = []
        try:
            for s in (0, 1):
                fds.append(os.open(self.P(s, rel), os.O_RDONLY | os.O_NOFOLLOW))
            a, b = self.read_all(fds[0]), self.read_all(fds[1])
        finally:
            for f in fds:
                os.close(f)
        if a != b:
            i = first_diff(a, b)
            self.fail("%s: content of %r differs (sizes %d / %d), first difference at offset %d"
                      % (what, rel, len(a), len(b), i), a[i:i + 32].hex(), b[i:i + 32].hex())

    def compare_all(self, full, what):
        """The whole tree: names and types, metadata, xattrs, hard-link
        structure, and file bytes (all files if full, else those changed)."""
        self.compares += 1
        tc, tp = self.walk(0), self.walk(1)
        if tc != tp:
            only_c = sorted(set(tc.items()) - set(tp.items()))
            only_p = sorted(set(tp.items()) - set(tc.items()))
            self.fail(what + ": the trees differ (names, types)", only_c[:20], only_p[:20])
        ino_map, ino_rev = {}, {}
        nfull = 0
        for rel in [""] + sorted(tp):
            r = self.compare_meta(rel, what=what + ": metadata")
            if r is None:
                continue
            sc, sp = r
            if sp.st_ino in ino_map and ino_map[sp.st_ino] != sc.st_ino or \
                    sc.st_ino in ino_rev and ino_rev[sc.st_ino] != sp.st_ino:
                self.fail(what + ": hard-link structure differs at %r" % rel,
                          "coffer inode %d" % sc.st_ino, "plain inode %d" % sp.st_ino)
            ino_map[sp.st_ino] = sc.st_ino
            ino_rev[sc.st_ino] = sp.st_ino
            xc, xp = self.xattrs(0, rel), self.xattrs(1, rel)
            if xc != xp:
                self.fail(what + ": xattrs of %r differ" % rel, xc, xp)
            if tp.get(rel) == "f" and (full or sp.st_ino in self.dirty):
                self.compare_content(rel, what)
                nfull += 1
        for i, sl in enumerate(self.slots):
            if not sl:
                continue
            sp = self.compare_fd_meta(sl[0], sl[1], what + ": open file in slot %d (%r)" % (i, sl[2]))
            if full or sp.st_ino in self.dirty:
                a, b = self.read_all(sl[0]), self.read_all(sl[1])
                if a != b:
                    j = first_diff(a, b)
                    self.fail(what + ": content of the open file in slot %d (%r) differs at %d (sizes %d / %d)"
                              % (i, sl[2], j, len(a), len(b)))
        self.dirty.clear()
        return nfull

    # ------------------------------------------------------------ operations
    def op_write(self, tgt, off, poff, n, creat):
        data = memoryview(self.pool)[poff:poff + n]
        flags = O_FLAGS["creat" if creat else "rw"]
        pre = self.parents_of([tgt[1]]) if tgt[0] == "path" and creat else set()
        existed = tgt[0] == "fd" or self.exists(tgt[1])
        r, held = self.data_op(tgt, flags, lambda fd: (os.pwrite(fd, data, off), os.fstat(fd).st_size), "write")
        try:
            if tgt[0] == "path" and creat:
                self.ns_changed(pre | self.parents_of([tgt[1]]), not existed)
                self.created(tgt[1], existed)
        except BaseException:
            self.close_held(held)
            raise
        if r[0] == "ok":
            self.check_data(tgt, off, off + n, "after write", held)

    def op_append(self, path, poff, n, fake_off, creat):
        data = memoryview(self.pool)[poff:poff + n]
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if creat else 0)
        pre = self.parents_of([path]) if creat else set()
        existed = self.exists(path)

        def fn(s):
            fd = os.open(self.P(s, path), flags, 0o644)
            try:
                w = os.pwrite(fd, data, fake_off)
                return w, os.fstat(fd).st_size
            finally:
                os.close(fd)
        r = self.both(fn, "pwrite with O_APPEND")
        if creat:
            self.ns_changed(pre | self.parents_of([path]), not existed)
            self.created(path, existed)
        if r[0] == "ok":
            w, size = r[1]
            self.check_data(["path", path], size - w, size, "after O_APPEND pwrite")

    def op_read(self, tgt, off, n):
        def fn(s):
            fd, close = self.fd_of(s, tgt, os.O_RDONLY)
            try:
                return os.pread(fd, n, off)
            finally:
                if close:
                    os.close(fd)
        self.both(fn, "read")

    def op_truncate(self, tgt, size):
        old = self.size_tgt(tgt)

        def fn(s):
            if tgt[0] == "fd":
                fd, _ = self.fd_of(s, tgt, 0)
                os.ftruncate(fd, size)
                return os.fstat(fd).st_size
            os.truncate(self.P(s, tgt[1]), size)
            return os.stat(self.P(s, tgt[1])).st_size
        r = self.both(fn, "truncate")
        if r[0] == "ok":
            self.check_data(tgt, min(old, size), max(old, size), "after truncate")

    def op_fallocate(self, tgt, mode, off, n, posix):
        def body(fd):
            if posix:
                os.posix_fallocate(fd, off, n)
            else:
                c_fallocate(fd, mode, off, n)
            return os.fstat(fd).st_size
        r, held = self.data_op(tgt, os.O_RDWR, body, "fallocate mode %#x" % mode)
        if r[0] == "ok":
            self.check_data(tgt, off, off + n, "after fallocate mode %#x" % mode, held)

    def op_mmap(self, tgt, off, poff, n, write):
        def body(fd):
            size = os.fstat(fd).st_size
            if size == 0:
                return "empty"
            o = min(off, size - 1)
            k = min(n, size - o)
            m = mmap.mmap(fd, size)
            try:
                if write:
                    m[o:o + k] = self.pool[poff:poff + k]
                    m.flush()
                    return o, k
                return bytes(m[o:o + k])
            finally:
                m.close()
        r, held = self.data_op(tgt, os.O_RDWR, body, "mmap " + ("write" if write else "read"))
        if r[0] == "ok" and write and r[1] != "empty":
            o, k = r[1]
            self.check_data(tgt, o, o + k, "after mmap write", held)
        else:
            self.close_held(held)

    def op_creat(self, path, how, mode):
        flags = os.O_WRONLY | os.O_CREAT | {"excl": os.O_EXCL, "trunc": os.O_TRUNC, "plain": 0}[how]
        pre = self.parents_of([path])
        existed = self.exists(path)

        def fn(s):
            fd = os.open(self.P(s, path), flags, mode)
            try:
                return os.fstat(fd).st_size
            finally:
                os.close(fd)
        r = self.both(fn, "open(O_CREAT%s)" % ("|O_" + how.upper() if how != "plain" else ""))
        self.ns_changed(pre | self.parents_of([path]), not existed)
        self.created(path, existed)
        if r[0] == "ok":
            ino = self.ino(path)
            self.dirty.add(ino)
            if how == "trunc":
                self.explicit.discard(ino)
            self.compare_meta(path, follow=True, what="after open(O_CREAT)")

    def ns_op(self, what, paths, fn, created=None):
        pre = self.parents_of(paths)
        r = self.both(fn, what)
        self.ns_changed(pre | self.parents_of(paths), r[0] == "ok")
        if r[0] == "ok" and created is not None:  # mkdir, symlink: always a new inode
            ino = self.ino(created, follow=False)
            self.explicit.discard(ino)
            self.dirty.add(ino)
        for p in paths:
            self.compare_meta(p, what="after " + what)
        if what.startswith(("mkdir", "rmdir", "rename")):
            for parent in sorted(set(os.path.dirname(p) for p in paths)):
                self.compare_meta(parent, what="after " + what + " (its folder)")
        return r

    def exists(self, rel):
        try:
            os.stat(self.P(1, rel))
            return True
        except OSError:
            return False

    def created(self, rel, existed):
        """A name that did not exist before now does: a new inode (which may
        reuse the number of a freed one)."""
        if existed:
            return
        ino = self.ino(rel)
        if ino is not None:
            self.explicit.discard(ino)
            self.dirty.add(ino)

    def ns_changed(self, inos, changed=True):
        """After an operation that may add or remove names: the folders'
        mtimes are no longer the ones set explicitly, and the generator's
        view of the namespace is read again (an operation that failed on
        both trees changed nothing)."""
        if changed:
            self.explicit -= inos
            self.refresh()

    def op_rename(self, src, dst, flags):
        def fn(s):
            a, b = self.P(s, src), self.P(s, dst)
            if flags == 0:
                os.rename(a, b)
            else:
                c_renameat2(a, b, flags)
        moved = self.ino(src, follow=False)
        r = self.ns_op("rename%s" % {0: "", 1: " NOREPLACE", 2: " EXCHANGE"}[flags], [src, dst], fn)
        if r[0] == "ok":
            # a folder moved to another parent gets a new ".." (conservative)
            for rel in (src, dst):
                try:
                    if stat.S_ISDIR(os.lstat(self.P(1, rel)).st_mode):
                        self.explicit.discard(os.lstat(self.P(1, rel)).st_ino)
                except OSError:
                    pass
            self.explicit.discard(moved)

    def op_link(self, src, dst):
        self.ns_op("link", [src, dst], lambda s: os.link(self.P(s, src), self.P(s, dst), follow_symlinks=False))

    def op_unlink(self, path):
        self.ns_op("unlink", [path], lambda s: os.unlink(self.P(s, path)))

    def op_mkdir(self, path, mode):
        self.ns_op("mkdir", [path], lambda s: os.mkdir(self.P(s, path), mode), created=path)

    def op_rmdir(self, path):
        self.ns_op("rmdir", [path], lambda s: os.rmdir(self.P(s, path)))

    def op_symlink(self, target, path):
        self.ns_op("symlink", [path], lambda s: os.symlink(target, self.P(s, path)), created=path)

    def attr_fn(self, tgt, fn_path, fn_fd):
        def fn(s):
            if tgt[0] == "fd":
                fd, _ = self.fd_of(s, tgt, 0)
                return fn_fd(fd)
            return fn_path(self.P(s, tgt[1]))
        return fn

    def after_attr(self, tgt, what, follow=True):
        if tgt[0] == "fd":
            fdc, fdp, _ = self.slots[tgt[1]]
            self.compare_fd_meta(fdc, fdp, "after " + what)
        else:
            self.compare_meta(tgt[1], follow=follow, what="after " + what)
            if follow:
                self.compare_meta(tgt[1], follow=False, what="after " + what + " (lstat)")

    def op_chmod(self, tgt, mode):
        self.both(self.attr_fn(tgt, lambda p: os.chmod(p, mode), lambda fd: os.fchmod(fd, mode)),
                  "chmod %o" % mode)
        self.after_attr(tgt, "chmod")

    def op_utime(self, tgt, at, mt, follow):
        ns = None if at is None else (at, mt)
        kw = {"ns": ns} if ns else {}
        r = self.both(self.attr_fn(tgt, lambda p: os.utime(p, follow_symlinks=follow, **kw),
                                   lambda fd: os.utime(fd, **kw)), "utime")
        if tgt[0] == "fd":
            ino = os.fstat(self.slots[tgt[1]][1]).st_ino
        else:
            ino = self.ino(tgt[1], follow)
        if ino is not None:
            if r[0] == "ok" and ns is not None:
                self.explicit.add(ino)
            elif r[0] == "ok":
                self.explicit.discard(ino)
        self.after_attr(tgt, "utime", follow)

    def op_setxattr(self, tgt, name, poff, n, flags, follow):
        value = self.pool[poff:poff + n]
        self.both(self.attr_fn(tgt, lambda p: os.setxattr(p, name, value, flags, follow_symlinks=follow),
                               lambda fd: os.setxattr(fd, name, value, flags)), "setxattr %s" % name)
        self.xattr_check(tgt, follow, "after setxattr")
        self.op_getxattr(tgt, name, follow, "after setxattr: getxattr %s" % name)

    def op_removexattr(self, tgt, name, follow):
        self.both(self.attr_fn(tgt, lambda p: os.removexattr(p, name, follow_symlinks=follow),
                               lambda fd: os.removexattr(fd, name)), "removexattr %s" % name)
        self.xattr_check(tgt, follow, "after removexattr")

    def xattr_check(self, tgt, follow, what):
        self.both(self.attr_fn(tgt, lambda p: sorted(os.listxattr(p, follow_symlinks=follow)),
                               lambda fd: sorted(os.listxattr(fd))), what + ": listxattr")
        self.after_attr(tgt, what, follow)

    def op_getxattr(self, tgt, name, follow, what=None):
        self.both(self.attr_fn(tgt, lambda p: os.getxattr(p, name, follow_symlinks=follow),
                               lambda fd: os.getxattr(fd, name)), what or "getxattr %s" % name)

    def op_listxattr(self, tgt, follow):
        self.both(self.attr_fn(tgt, lambda p: sorted(os.listxattr(p, follow_symlinks=follow)),
                               lambda fd: sorted(os.listxattr(fd))), "listxattr")

    def op_stat(self, path, follow):
        self.compare_meta(path, follow=follow, what="stat" if follow else "lstat")

    def op_readdir(self, path):
        self.both(lambda s: sorted(os.listdir(self.P(s, path))), "readdir")

    def op_readlink(self, path):
        self.both(lambda s: os.readlink(self.P(s, path)), "readlink")

    def op_fsync(self, tgt, data):
        def fn(s):
            fd, close = self.fd_of(s, tgt, os.O_RDONLY)
            try:
                (os.fdatasync if data else os.fsync)(fd)
            finally:
                if close:
                    os.close(fd)
        self.both(fn, "fdatasync" if data else "fsync")

    def op_fsyncdir(self, path):
        def fn(s):
            fd = os.open(self.P(s, path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.both(fn, "fsync of a folder")

    def op_open(self, slot, path, creat):
        if self.slots[slot]:
            self.op_close(slot)
        flags = O_FLAGS["creat" if creat else "rw"]
        pre = self.parents_of([path]) if creat else set()
        existed = self.exists(path)
        fds = []

        def fn(s):
            fds.append(os.open(self.P(s, path), flags, 0o644))
        try:
            r = self.both(fn, "open O_RDWR%s" % ("|O_CREAT" if creat else ""))
        except Mismatch:
            for f in fds:
                os.close(f)
            raise
        if creat:
            self.ns_changed(pre | self.parents_of([path]), not existed)
            self.created(path, existed)
        if r[0] == "ok":
            self.slots[slot] = (fds[0], fds[1], path)
            self.compare_fd_meta(fds[0], fds[1], "after open")

    def op_close(self, slot):
        sl = self.slots[slot]
        if not sl:
            raise Skip()
        self.slots[slot] = None
        errs = []
        for f in sl[:2]:
            try:
                os.close(f)
                errs.append(None)
            except OSError as e:
                errs.append(ename(e.errno))
        if errs[0] != errs[1]:
            self.fail("close differs", errs[0], errs[1])

    def close_all(self):
        for i, sl in enumerate(self.slots):
            if sl:
                self.op_close(i)

    # ------------------------------------------------------------ checkpoints
    def request(self, line):
        sys.stdout.write("REQ " + line + "\n")
        sys.stdout.flush()
        reply = sys.stdin.readline().strip()
        if reply != "OK":
            self.fail("checkpoint %r failed: %s" % (line, reply or "no reply"))

    def op_sync(self):
        t = time.time()
        self.request("sync")
        self.compare_all(False, "after coffer sync")
        self.checkpoints.append(("sync", time.time() - t))

    def op_remount(self, kind):
        t = time.time()
        self.close_all()
        self.request("remount " + kind)
        n = self.compare_all(True, "after remount (%s)" % ("new device" if kind == "new" else "same state"))
        self.checkpoints.append(("remount-" + kind, time.time() - t))
        if self.verbose:
            self.log("remount %s: %d files compared in full" % (kind, n))

    # ------------------------------------------------------------ driver
    def execute(self, op):
        self.cur_op = op
        self.history.append((self.step, op))
        if self.verbose > 1:
            self.log("step %d: %s" % (self.step, json.dumps(op)))
        if self.trace:
            self.trace.write(json.dumps(op) + "\n")
        self.stats[op[0]] += 1
        t = time.time()
        try:
            getattr(self, "op_" + op[0])(*op[1:])
        except Skip:
            self.stats["skipped"] += 1
        self.op_time[op[0]] += time.time() - t

    def run(self, replay=None):
        t0 = time.time()
        self.refresh()
        # The plain root takes the mode of the mount's root (not an op).
        os.chmod(self.roots[1], stat.S_IMODE(os.stat(self.roots[0]).st_mode))
        self.compare_all(True, "initial state")
        ops = None
        if replay:
            with open(replay) as f:
                ops = [json.loads(l) for l in f if l.strip()]
            self.nops = len(ops)
        next_cp = self.rng.randint(CP_MIN, CP_MAX)
        while self.step < self.nops:
            if ops is not None:
                op = ops[self.step]
            elif self.step == next_cp:
                x = self.rng.random()
                op = ["sync"] if x < 0.4 else ["remount", "same" if x < 0.75 else "new"]
                next_cp += self.rng.randint(CP_MIN, CP_MAX)
            else:
                if self.step % 20 == 0:
                    self.update_total_size()
                op = self.gen()
            self.execute(op)
            self.step += 1
            if self.step % COMPARE_EVERY == 0:
                self.cur_op = ["(whole-tree compare after %d operations)" % self.step]
                t = time.time()
                self.compare_all(False, "periodic compare")
                self.op_time["(periodic compare)"] += time.time() - t
            if self.verbose and self.step % 2500 == 0:
                self.log("%d ops, %.1f s; files %d, %.1f MiB; slowest: %s" % (
                    self.step, time.time() - t0, len(self.files), self.total_size / MiB,
                    ", ".join("%s %.1f s" % kv for kv in self.op_time.most_common(6))))
                self.op_time.clear()
        # The end: everything must be there for a new device after publishing.
        self.cur_op = ["(end: remount on a new device, whole-tree compare)"]
        self.history.append((self.step, ["remount", "new"]))
        self.op_remount("new")
        return time.time() - t0


GEN_TABLE = [
    ("write", 22), ("append", 4), ("read", 10), ("truncate", 6), ("fallocate", 7),
    ("mmap", 3), ("creat", 4), ("rename", 7), ("link", 3), ("unlink", 4),
    ("mkdir", 3), ("rmdir", 2), ("symlink", 3), ("chmod", 3), ("utime", 3),
    ("setxattr", 4), ("removexattr", 2), ("getxattr", 2), ("stat", 3),
    ("readdir", 2), ("readlink", 1), ("fsync", 3), ("open", 3), ("close", 2),
]
GEN_NAMES = [n for n, _ in GEN_TABLE]
GEN_WEIGHTS = [w for _, w in GEN_TABLE]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnt", required=True, help="the coffer mountpoint")
    ap.add_argument("--ref", required=True, help="the plain folder (empty at the start)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--trace", help="write the operations (JSON lines) to this file")
    ap.add_argument("--replay", help="run the operations of this trace instead of generating them")
    ap.add_argument("--replay-env", default="", help="environment settings printed before the replay command")
    ap.add_argument("--wide-times", action="store_true",
                    help="utime also with times after 2262-04-11 (past a signed 64-bit count of ns)")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args()
    m = Model(args)
    try:
        took = m.run(args.replay)
    except Mismatch as e:
        in_op = m.cur_op is not None and not m.cur_op[0].startswith("(")
        m.log("MISMATCH %s (seed %d): %s" % ("at step %d" % m.step if in_op else "after %d operations" % m.step,
                                             m.seed, json.dumps(m.cur_op)))
        for line in str(e).split("\n"):
            m.log("  " + line)
        m.log("  the last operations (step: op):")
        for st, op in m.history:
            m.log("    %d: %s" % (st, json.dumps(op)[:300]))
        m.log("  replay: %sCOFFER_MODEL_SEED=%d COFFER_MODEL_OPS=%d bash tests/integration/test_model.sh"
              % (args.replay_env, m.seed, m.step + 1 if in_op else m.step))
        m.log("  (COFFER_MODEL_VERBOSE=2 prints every operation; COFFER_MODEL_TRACE=DIR writes them as JSON lines,"
              " which COFFER_MODEL_REPLAY=FILE runs, also shortened)")
        first = str(e).split("\n")[0]
        print("RESULT fail seed=%d step=%d op=%s: %s" % (m.seed, m.step, json.dumps(m.cur_op)[:200], first[:300]))
        sys.stdout.flush()
        return 1
    cps = collections.Counter(k for k, _ in m.checkpoints)
    m.log("%d ops in %.1f s; compares %d; checkpoints %s (%.1f s); errors matched %s"
          % (m.step, took, m.compares, dict(cps), sum(t for _, t in m.checkpoints),
             dict(m.errors.most_common(8))))
    if m.verbose:
        m.log("op counts: %s" % dict(m.stats.most_common()))
    print("RESULT ok seed=%d ops=%d time=%.1fs compares=%d checkpoints=%d"
          % (m.seed, m.step, took, m.compares, len(m.checkpoints)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
