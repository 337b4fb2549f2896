#!/usr/bin/env bash
# Every operation of the FUSE driver (issue 2 part 6) through a real mount:
# files, directories, renames (NOREPLACE, EXCHANGE), links, symlinks, special
# files, xattrs, attributes and times, fallocate, SEEK_DATA/SEEK_HOLE, sparse
# and > 4 GiB files, mmap, open-unlinked files, name lengths, permissions as
# another user (-o allow_other), statfs.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount -o allow_other || fatal "coffer mount"
require_mounted
M=$MNT

log "read-ahead of the mount (-o read_ahead_kb, 2048 KiB by default)"
bdi=/sys/class/bdi/$(mountpoint -d "$M")
if [ -w "$bdi/read_ahead_kb" ]; then
    assert_eq 2048 "$(cat "$bdi/read_ahead_kb")" "the daemon set the mount's read-ahead to 2 MiB"
else
    log "skipped: $bdi/read_ahead_kb is not writable here"
fi

# ------------------------------------------------------------ files
log "create / read / write / append / truncate"
printf 'hello\n' >"$M/a.txt"
assert_eq 'hello' "$(cat "$M/a.txt")" "create + read back"
printf 'world\n' >>"$M/a.txt"
assert_eq $'hello\nworld' "$(cat "$M/a.txt")" "append with >>"
py_check "O_APPEND writes at the end whatever the offset" '
fd = os.open(M + "/a.txt", os.O_WRONLY | os.O_APPEND)
os.pwrite(fd, b"tail\n", 0)
os.close(fd)
assert open(M + "/a.txt", "rb").read() == b"hello\nworld\ntail\n", open(M + "/a.txt", "rb").read()'
printf 'HELLO' | dd of="$M/a.txt" conv=notrunc status=none
assert_eq $'HELLO\nworld\ntail' "$(cat "$M/a.txt")" "overwrite in place (conv=notrunc)"
: >"$M/a.txt"
assert_eq 0 "$(stat -c %s "$M/a.txt")" "O_TRUNC empties the file"

head -c 3000000 /dev/urandom >"$T/rand"
cp "$T/rand" "$M/rand"
assert_file_eq "$T/rand" "$M/rand" "3 MB random file read back"
py_check "writes at unaligned offsets across block edges" '
import random
random.seed(7)
ref = bytearray(open(T + "/rand", "rb").read())
fd = os.open(M + "/rand", os.O_RDWR)
for i in range(200):
    off = random.randrange(0, len(ref) + 70000)
    n = random.randrange(1, 70000)
    data = os.urandom(n)
    os.pwrite(fd, data, off)
    if off > len(ref): ref.extend(b"\0" * (off - len(ref)))
    ref[off:off + n] = data
os.close(fd)
got = open(M + "/rand", "rb").read()
assert len(got) == len(ref), (len(got), len(ref))
assert got == bytes(ref), "content differs"'
cp "$M/rand" "$T/rand2"
truncate -s 100000 "$M/rand"
head -c 100000 "$T/rand2" >"$T/rand.100k"
assert_file_eq "$T/rand.100k" "$M/rand" "truncate down keeps the prefix"
truncate -s 5000000 "$M/rand"
assert_eq 5000000 "$(stat -c %s "$M/rand")" "truncate up sets the size"
cp "$T/rand.100k" "$T/rand.up" && truncate -s 5000000 "$T/rand.up"
assert_file_eq "$T/rand.up" "$M/rand" "truncate up reads zeros after the old end"
truncate -s 0 "$M/rand"
assert_eq 0 "$(stat -c %s "$M/rand")" "truncate to 0"

assert_errno EEXIST 'os.open(M + "/a.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)' "O_EXCL on an existing file: EEXIST"
assert_errno OK 'os.close(os.open(M + "/excl", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))' "O_EXCL on a new name creates it"
assert_eq 640 "$(stat -c %a "$M/excl")" "create mode honoured"
assert_errno ENOENT 'os.stat(M + "/no-such-file")' "stat of a missing name: ENOENT"
assert_errno EISDIR 'open(M, "w")' "open a directory for writing: EISDIR"

# ------------------------------------------------------------ directories
log "mkdir / rmdir / readdir"
check "mkdir -p nested" mkdir -p "$M/d1/d2/d3/d4"
check "mkdir with mode" mkdir -m 700 "$M/d700"
assert_eq 700 "$(stat -c %a "$M/d700")" "mkdir mode honoured"
assert_eq "directory" "$(stat -c %F "$M/d1")" "directory type"
touch "$M/d1/d2/f"
assert_errno ENOTEMPTY 'os.rmdir(M + "/d1/d2")' "rmdir of a non-empty directory: ENOTEMPTY"
assert_errno ENOTDIR 'os.rmdir(M + "/d1/d2/f")' "rmdir of a file: ENOTDIR"
assert_errno EEXIST 'os.mkdir(M + "/d1")' "mkdir of an existing name: EEXIST"
check "rmdir of an empty directory" rmdir "$M/d1/d2/d3/d4"
check_fails "removed directory is gone" test -e "$M/d1/d2/d3/d4"
assert_eq 3 "$(stat -c %h "$M/d1")" "directory link count = 2 + subdirectories"
py_check "readdir of 3000 entries lists exactly what was created" '
os.mkdir(M + "/many")
names = set("entry-%05d-%s" % (i, "x" * (i % 40)) for i in range(3000))
for n in names:
    open(M + "/many/" + n, "w").close()
got = set(os.listdir(M + "/many"))
assert got == names, (len(got), len(names), sorted(got ^ names)[:5])
with os.scandir(M + "/many") as it:
    for e in it:
        assert e.is_file(), e.name'
check "rm -rf of the 3000 entries" rm -rf "$M/many"
check_fails "the big directory is gone" test -e "$M/many"

# ------------------------------------------------------------ unlink / rename
log "unlink / rename / renameat2"
echo one >"$M/r1"; echo two >"$M/r2"
check "unlink" rm "$M/excl"
check_fails "unlinked name is gone" test -e "$M/excl"
check "rename to a new name" mv "$M/r1" "$M/r1b"
assert_eq one "$(cat "$M/r1b")" "renamed file keeps its content"
check "rename over an existing file" mv -f "$M/r1b" "$M/r2"
assert_eq one "$(cat "$M/r2")" "rename replaced the target"
check_fails "the source name is gone" test -e "$M/r1b"
check "rename into another directory" mv "$M/r2" "$M/d1/d2/r2"
assert_eq one "$(cat "$M/d1/d2/r2")" "moved across directories"
check "rename a directory" mv "$M/d1/d2" "$M/d2moved"
assert_eq one "$(cat "$M/d2moved/r2")" "content under a renamed directory"
assert_errno EINVAL 'os.rename(M + "/d2moved", M + "/d2moved/inside")' "rename a directory into itself: EINVAL"
mkdir -p "$M/full/x" "$M/empty"
assert_errno ENOTEMPTY 'os.rename(M + "/empty", M + "/full")' "rename over a non-empty directory: ENOTEMPTY"
RENAMEAT2='
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
NOREPLACE, EXCHANGE = 1, 2
'
echo A >"$M/xa"; echo B >"$M/xb"
assert_errno EEXIST "$RENAMEAT2"'renameat2(M + "/xa", M + "/xb", NOREPLACE)' "RENAME_NOREPLACE onto an existing name: EEXIST"
assert_eq "A B" "$(cat "$M/xa") $(cat "$M/xb")" "failed NOREPLACE changed nothing"
assert_errno OK "$RENAMEAT2"'renameat2(M + "/xa", M + "/xc", NOREPLACE)' "RENAME_NOREPLACE onto a new name"
assert_eq A "$(cat "$M/xc")" "NOREPLACE rename moved the file"
assert_errno OK "$RENAMEAT2"'renameat2(M + "/xc", M + "/xb", EXCHANGE)' "RENAME_EXCHANGE of two files"
assert_eq "B A" "$(cat "$M/xc") $(cat "$M/xb")" "RENAME_EXCHANGE swapped the contents"
mkdir "$M/xdir"; echo inside >"$M/xdir/f"
assert_errno OK "$RENAMEAT2"'renameat2(M + "/xb", M + "/xdir", EXCHANGE)' "RENAME_EXCHANGE of a file and a directory"
assert_eq "inside A" "$(cat "$M/xb/f") $(cat "$M/xdir")" "exchanged file and directory"
assert_errno ENOENT "$RENAMEAT2"'renameat2(M + "/xc", M + "/nonexistent", EXCHANGE)' "RENAME_EXCHANGE with a missing target: ENOENT"

# ------------------------------------------------------------ hard links
log "hard links"
echo linked >"$M/h1"
check "ln (hard link)" ln "$M/h1" "$M/d1/h2"
assert_eq 2 "$(stat -c %h "$M/h1")" "link count 2 after ln"
assert_eq "$(stat -c %i "$M/h1")" "$(stat -c %i "$M/d1/h2")" "both names have one inode number"
echo more >>"$M/d1/h2"
assert_eq $'linked\nmore' "$(cat "$M/h1")" "a write through one name shows through the other"
rm "$M/h1"
assert_eq 1 "$(stat -c %h "$M/d1/h2")" "link count 1 after unlinking one name"
assert_eq $'linked\nmore' "$(cat "$M/d1/h2")" "content stays with the remaining name"
assert_errno EPERM 'os.link(M + "/d1", M + "/d1link")' "hard link to a directory: EPERM"

# ------------------------------------------------------------ symlinks
log "symlinks"
check "ln -s" ln -s a.txt "$M/sl"
assert_eq a.txt "$(readlink "$M/sl")" "readlink"
assert_eq "symbolic link" "$(stat -c %F "$M/sl")" "symlink type"
echo through >"$M/a.txt"
assert_eq through "$(cat "$M/sl")" "reading through a symlink"
long=$(head -c 4095 /dev/zero | tr '\0' 't')
check "symlink with a 4095-byte target" ln -s "$long" "$M/longlink"
assert_eq "$long" "$(readlink "$M/longlink")" "4095-byte target read back"
assert_eq 4095 "$(stat -c %s "$M/longlink")" "symlink size = target length"
assert_errno ENAMETOOLONG 'os.symlink("t" * 4096, M + "/toolong")' "4096-byte target: ENAMETOOLONG"
ln -s loop1 "$M/loop2"; ln -s loop2 "$M/loop1"
assert_errno ELOOP 'open(M + "/loop1")' "symlink loop: ELOOP"
ln -s /nonexistent/dangling "$M/dangling"
assert_eq /nonexistent/dangling "$(readlink "$M/dangling")" "dangling symlink keeps its target"

# ------------------------------------------------------------ special files
log "mkfifo / mknod / socket"
check "mkfifo" mkfifo "$M/fifo"
assert_eq "fifo" "$(stat -c %F "$M/fifo")" "FIFO type"
py_check "a FIFO on the mount passes data" '
r = os.open(M + "/fifo", os.O_RDONLY | os.O_NONBLOCK)
w = os.open(M + "/fifo", os.O_WRONLY)
os.write(w, b"through the pipe")
assert os.read(r, 100) == b"through the pipe"
os.close(w); os.close(r)'
check "mknod c 1 3 (as root)" mknod "$M/chardev" c 1 3
assert_eq "character special file 1 3" "$(stat -c '%F %t %T' "$M/chardev")" "char device type and numbers"
check "mknod b 7 0 (as root)" mknod "$M/blockdev" b 7 0
assert_eq "block special file 7 0" "$(stat -c '%F %t %T' "$M/blockdev")" "block device type and numbers"
py_check "bind a Unix socket on the mount (mknod S_IFSOCK)" '
import socket
s = socket.socket(socket.AF_UNIX)
s.bind(M + "/sock")
assert stat.S_ISSOCK(os.lstat(M + "/sock").st_mode)
s.close()'

# ------------------------------------------------------------ xattrs
log "xattrs"
echo x >"$M/xf"
check "setfattr" setfattr -n user.color -v blue "$M/xf"
check "setfattr binary value" setfattr -n user.bin -v 0x00ff00ff10 "$M/xf"
assert_eq blue "$(getfattr --absolute-names --only-values -n user.color "$M/xf" 2>&1)" "getfattr returns the value"
assert_eq "0x00ff00ff10" "$(getfattr --absolute-names -e hex -n user.bin "$M/xf" 2>/dev/null | sed -n 's/^user.bin=//p')" "binary xattr value"
assert_eq $'user.bin\nuser.color' "$(getfattr --absolute-names -d -m - "$M/xf" 2>/dev/null | grep -o '^user\.[a-z]*' | sort)" "listxattr lists both"
check "setfattr replaces a value" setfattr -n user.color -v green "$M/xf"
assert_eq green "$(getfattr --absolute-names --only-values -n user.color "$M/xf" 2>&1)" "replaced value"
assert_errno EEXIST 'os.setxattr(M + "/xf", "user.color", b"red", os.XATTR_CREATE)' "XATTR_CREATE on an existing name: EEXIST"
assert_errno ENODATA 'os.setxattr(M + "/xf", "user.nope", b"red", os.XATTR_REPLACE)' "XATTR_REPLACE on a missing name: ENODATA"
check "setfattr -x removes" setfattr -x user.color "$M/xf"
assert_errno ENODATA 'os.getxattr(M + "/xf", "user.color")' "removed xattr: ENODATA"
check "xattr on a directory" setfattr -n user.dirattr -v d "$M/d1"
assert_eq d "$(getfattr --absolute-names --only-values -n user.dirattr "$M/d1" 2>&1)" "directory xattr"
big=$(head -c 4000 /dev/zero | tr '\0' v)
check "a 4000-byte xattr value" setfattr -n user.big -v "$big" "$M/xf"
assert_eq 4000 "$(getfattr --absolute-names --only-values -n user.big "$M/xf" 2>/dev/null | wc -c)" "large xattr read back"

# ------------------------------------------------------------ attributes, times
log "chmod / chown / times"
check "chmod 4751" chmod 4751 "$M/xf"
assert_eq 4751 "$(stat -c %a "$M/xf")" "mode after chmod"
chmod 644 "$M/xf"
check "chown 65534:65534" chown 65534:65534 "$M/xf"
assert_eq "65534:65534" "$(stat -c %u:%g "$M/xf")" "owner after chown"
check "chown -h on a symlink" chown -h 65534:65534 "$M/sl"
assert_eq "65534:65534" "$(stat -c %u:%g "$M/sl")" "symlink owner"
assert_eq "0:0" "$(stat -c %u:%g "$M/a.txt")" "chown -h did not follow the link"
check "touch -d" touch -d '2001-02-03 04:05:06.123456789' "$M/xf"
assert_eq "2001-02-03 04:05:06.123456789" "$(stat -c %y "$M/xf" | cut -c1-29)" "mtime with nanoseconds"
assert_eq "2001-02-03 04:05:06.123456789" "$(stat -c %x "$M/xf" | cut -c1-29)" "atime with nanoseconds"
UTIMENSAT='
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
class TS(ctypes.Structure): _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
def utimensat(p, a, m):
    ts = (TS * 2)(TS(*a), TS(*m))
    if libc.utimensat(-100, p.encode(), ts, 0) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
'
py_check "utimensat with UTIME_OMIT keeps atime, sets mtime" "$UTIMENSAT"'
p = M + "/xf"
before = os.stat(p)
utimensat(p, (0, UTIME_OMIT), (1234567890, 5))
st = os.stat(p)
assert st.st_atime_ns == before.st_atime_ns, (st.st_atime_ns, before.st_atime_ns)
assert st.st_mtime_ns == 1234567890 * 10**9 + 5, st.st_mtime_ns'
py_check "utimensat with UTIME_NOW sets atime to now, UTIME_OMIT keeps mtime" "$UTIMENSAT"'
import time
p = M + "/xf"
utimensat(p, (0, UTIME_NOW), (0, UTIME_OMIT))
st = os.stat(p)
assert abs(st.st_atime - time.time()) < 60, st.st_atime
assert st.st_mtime_ns == 1234567890 * 10**9 + 5, st.st_mtime_ns'
py_check "os.utime(ns=...) sets both times" '
p = M + "/xf"
os.utime(p, ns=(1000000000123, 2000000000456))
st = os.stat(p)
assert (st.st_atime_ns, st.st_mtime_ns) == (1000000000123, 2000000000456), (st.st_atime_ns, st.st_mtime_ns)'
py_check "times past 2262 are clamped to the last representable instant, never wrapped" '
p = M + "/xf"
os.utime(p, ns=(0, 10**19))
st = os.stat(p)
assert st.st_mtime_ns >= (2**63 // 10**9 - 1) * 10**9, st.st_mtime_ns
os.utime(p, ns=(0, -(10**19)))
st = os.stat(p)
assert st.st_mtime_ns <= -(2**63 // 10**9 - 1) * 10**9, st.st_mtime_ns
os.utime(p, ns=(1000000000123, 2000000000456))'
py_check "a write updates mtime and ctime" '
import time
p = M + "/xf"
os.utime(p, ns=(10**9, 10**9))
c0 = os.stat(p).st_ctime_ns
time.sleep(0.05)
with open(p, "a") as f: f.write("more")
st = os.stat(p)
assert st.st_mtime_ns > 10**9 and abs(st.st_mtime - time.time()) < 60, st.st_mtime_ns
assert st.st_ctime_ns >= c0, (st.st_ctime_ns, c0)'

# ------------------------------------------------------------ fallocate, holes
log "fallocate / SEEK_DATA / SEEK_HOLE / sparse"
check "fallocate -l 1MiB" fallocate -l 1048576 "$M/fa"
assert_eq 1048576 "$(stat -c %s "$M/fa")" "fallocate sets the size"
assert_eq 0 "$(tr -d '\0' <"$M/fa" | wc -c)" "fallocated range reads as zeros"
check "fallocate --keep-size" fallocate -n -o 0 -l 4194304 "$M/fa"
assert_eq 1048576 "$(stat -c %s "$M/fa")" "KEEP_SIZE keeps the size"
head -c 65536 /dev/urandom >"$T/pattern"
cp "$T/pattern" "$M/punch"
check "fallocate --punch-hole" fallocate -p -o 4096 -l 8192 "$M/punch"
cp "$T/pattern" "$T/punch.ref"
dd if=/dev/zero of="$T/punch.ref" bs=4096 seek=1 count=2 conv=notrunc status=none
assert_file_eq "$T/punch.ref" "$M/punch" "punched range reads zeros, the rest is kept"
check "fallocate --zero-range" fallocate -z -o 32768 -l 4096 "$M/punch"
dd if=/dev/zero of="$T/punch.ref" bs=4096 seek=8 count=1 conv=notrunc status=none
assert_file_eq "$T/punch.ref" "$M/punch" "zeroed range reads zeros"
py_check "SEEK_DATA / SEEK_HOLE find the data and the hole" '
p = M + "/holes"
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"d" * 65536, 0)
os.pwrite(fd, b"e" * 65536, 64 << 20)
os.fsync(fd)
size = (64 << 20) + 65536
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
hole = os.lseek(fd, 0, os.SEEK_HOLE)
# With the write-back cache (the default) the kernel answers: the whole file
# is data (POSIX allows it); the precise map is checked by test_conformance
# with -o no_writeback_cache.
assert hole == size or 65536 <= hole < (64 << 20), ("first hole at", hole)
if hole < size:
    data = os.lseek(fd, hole, os.SEEK_DATA)
    assert hole < data <= (64 << 20), ("next data at", data)
    assert os.lseek(fd, data, os.SEEK_HOLE) == size, "hole at EOF"
assert os.pread(fd, 16, (64 << 20) - 8) == b"\0" * 8 + b"e" * 8
try:
    os.lseek(fd, size + 1, os.SEEK_DATA); raise AssertionError("SEEK_DATA past EOF did not fail")
except OSError as e:
    assert e.errno == errno.ENXIO, e
os.close(fd)'
t0=$SECONDS
check "truncate -s 1P returns at once" timeout 20 truncate -s 1P "$M/huge"
assert_eq 1125899906842624 "$(stat -c %s "$M/huge")" "size of the 1 PiB sparse file"
assert_eq 0 "$(stat -c %b "$M/huge")" "the 1 PiB sparse file takes no blocks"
assert_match '^[0-9]$|^1[0-9]$' "$((SECONDS - t0))" "1 PiB truncate and stat took under 20 s"
check "reading 4 KiB at 512 TiB inside the hole gives zeros" \
    bash -c "timeout 20 dd if='$M/huge' bs=4096 skip=\$((1 << 37)) count=1 status=none | cmp -n 4096 - /dev/zero"
check "rm of the 1 PiB file" rm "$M/huge"
py_check "a > 4 GiB sparse file: data written beyond 4 GiB reads back" '
p = M + "/big"
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
blob = os.urandom(1 << 20)
off = (5 << 30) + 12345
os.pwrite(fd, blob, off)
os.pwrite(fd, b"edge", (4 << 30) - 2)
os.close(fd)
st = os.stat(p)
assert st.st_size == off + len(blob), st.st_size
fd = os.open(p, os.O_RDONLY)
assert os.pread(fd, len(blob), off) == blob, "data beyond 4 GiB differs"
assert os.pread(fd, 4, (4 << 30) - 2) == b"edge", "data across the 4 GiB edge differs"
assert os.pread(fd, 4096, 3 << 30) == bytes(4096), "hole not zero"
os.close(fd)
assert st.st_blocks * 512 < (64 << 20), ("sparse file takes", st.st_blocks * 512)'
rm -f "$M/big"

# ------------------------------------------------------------ mmap
log "mmap"
py_check "mmap write then read (in the map and with read(2))" '
import mmap
p = M + "/mm"
with open(p, "wb") as f: f.truncate(1 << 20)
with open(p, "r+b") as f:
    m = mmap.mmap(f.fileno(), 1 << 20)
    m[0:5] = b"hello"
    m[(1 << 20) - 5:] = b"world"
    m[300000:300010] = b"0123456789"
    m.flush(); m.close()
with open(p, "rb") as f: d = f.read()
assert d[0:5] == b"hello" and d[-5:] == b"world" and d[300000:300010] == b"0123456789"
assert d.count(0) == (1 << 20) - 20
with open(p, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    assert m[300000:300010] == b"0123456789"; m.close()'

# ------------------------------------------------------------ kernel cache fill
log "small reads fill the kernel cache with the rest of their 16 KiB frame"
# fincore counts a file's pages in the page cache; drop_caches empties it.
head -c 262144 /dev/urandom >"$T/fill.ref"
cp "$T/fill.ref" "$M/fill"
py_check "a 4 KiB read caches its whole 16 KiB frame, and no stale byte is ever read" '
import random, subprocess
def drop():
    os.sync(); open("/proc/sys/vm/drop_caches", "w").write("3")
def cached(p):
    return int(subprocess.run(["fincore", "--raw", "--noheadings", "--output", "PAGES", p],
                              capture_output=True, text=True, check=True).stdout.split()[0])
p = M + "/fill"
ref = bytearray(open(T + "/fill.ref", "rb").read())
def rd(off, n=4096):
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)   # no kernel readahead
    b = os.pread(fd, n, off); os.close(fd); return b
drop()
assert cached(p) == 0, cached(p)
assert rd(20480) == ref[20480:24576]
# The fill runs on its own thread after the reply: give it up to 2 s.
import time
for _ in range(200):
    if cached(p) == 4: break
    time.sleep(0.01)
assert cached(p) == 4, ("pages cached after one 4 KiB read", cached(p))
assert rd(16384) == ref[16384:20480] and rd(28672) == ref[28672:32768]   # from the cache
# A writer open: no fill (its pages may be newer than what coffer has).
w = os.open(p, os.O_RDWR)
assert rd(65536) == ref[65536:69632]
assert cached(p) == 5, ("a writer is open: only the page asked for", cached(p))
os.pwrite(w, b"W" * 5000, 70000); ref[70000:75000] = b"W" * 5000
os.close(w)
assert rd(69632, 8192) == ref[69632:77824]
# Changes without a writable handle: truncate by path, down and up again.
drop()
random.seed(3)
for i in range(200):
    off = random.randrange(0, len(ref) // 4096) * 4096
    assert rd(off) == ref[off:off + 4096], ("read", i, off)
    if i % 40 == 39:
        cut = random.randrange(0, len(ref))
        os.truncate(p, cut); os.truncate(p, len(ref))
        ref[cut:] = bytes(len(ref) - cut)
    if i % 40 == 19:
        w = os.open(p, os.O_WRONLY); x = random.randrange(0, len(ref) - 9000)
        data = os.urandom(9000); os.pwrite(w, data, x); os.close(w); ref[x:x + 9000] = data
assert open(p, "rb").read() == bytes(ref)
drop()
assert open(p, "rb").read() == bytes(ref)'

# ------------------------------------------------------------ open after unlink
log "open-unlinked files"
py_check "an open file stays readable and writable after unlink" '
p = M + "/ghost"
f = open(p, "w+b")
f.write(b"before unlink"); f.flush()
os.unlink(p)
assert not os.path.exists(p)
assert os.fstat(f.fileno()).st_nlink == 0
f.write(b" and after"); f.flush()
f.seek(0)
assert f.read() == b"before unlink and after"
f.close()
assert "ghost" not in os.listdir(M)'
py_check "an open file stays readable after being renamed over" '
p, q = M + "/over1", M + "/over2"
open(p, "wb").write(b"old content")
open(q, "wb").write(b"new content")
f = open(p, "rb")
os.rename(q, p)
assert f.read() == b"old content"
f.close()
assert open(p, "rb").read() == b"new content"'

# ------------------------------------------------------------ names
log "name lengths"
n255=$(head -c 255 /dev/zero | tr '\0' n)
check "a 255-byte name" touch "$M/$n255"
check "a 255-byte directory name" mkdir "$M/d$(head -c 254 /dev/zero | tr '\0' d)"
assert_eq "$n255" "$(ls "$M" | grep '^nnn')" "255-byte name listed"
assert_errno ENAMETOOLONG 'open(M + "/" + "n" * 256, "w")' "a 256-byte name: ENAMETOOLONG"
assert_errno ENAMETOOLONG 'os.mkdir(M + "/" + "d" * 256)' "mkdir with a 256-byte name: ENAMETOOLONG"
py_check "names with any byte but / and NUL" '
names = [b"sp ace", b"tab\tnl\n", b"\xff\xfe latin1 \xe9", "üñíçødé ✓".encode(), b"-dash", b".hidden", b"..dots", b"\x01\x7f"]
for n in names:
    open(os.path.join(M.encode(), n), "wb").write(n)
got = set(os.listdir(M.encode()))
for n in names:
    assert n in got, n
    assert open(os.path.join(M.encode(), n), "rb").read() == n, n'
py_check "a 40-level deep tree" '
p = M
for i in range(40): p = os.path.join(p, "level%02d" % i)
os.makedirs(p)
open(p + "/leaf", "w").write("deep")
assert open(p + "/leaf").read() == "deep"'

# ------------------------------------------------------------ statfs
log "statfs"
check "stat -f" stat -f "$M"
assert_eq 255 "$(stat -f -c %l "$M")" "statfs name max 255"
assert_match '^[1-9][0-9]*$' "$(stat -f -c %b "$M")" "statfs reports a total block count"

# ------------------------------------------------------------ another user
log "permissions as uid 65534 with -o allow_other"
chmod 755 "$T"   # let uid 65534 reach the mountpoint
mkdir "$M/perm"; chmod 755 "$M/perm"
echo public >"$M/perm/public"; chmod 644 "$M/perm/public"
echo secret >"$M/perm/private"; chmod 600 "$M/perm/private"
mkdir "$M/perm/open"; chmod 1777 "$M/perm/open"
as_nobody() { timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
as_nobody test -x "$M" ||
    fail "uid 65534 cannot reach $M: make every folder above it traversable (e.g. chmod 755 \$COFFER_TEST_TMP)"
assert_eq public "$(as_nobody cat "$M/perm/public" 2>&1)" "another user reads a 0644 file"
check_fails "another user cannot read a 0600 file" as_nobody cat "$M/perm/private"
assert_match 'Permission denied' "$(as_nobody cat "$M/perm/private" 2>&1)" "... with EACCES"
check_fails "another user cannot write a 0644 file" as_nobody sh -c "echo x >>'$M/perm/public'"
check_fails "another user cannot create in a 0755 directory" as_nobody touch "$M/perm/new"
check_fails "another user cannot chmod a file it does not own" as_nobody chmod 777 "$M/perm/public"
check "another user creates in a 1777 directory" as_nobody sh -c "echo mine >'$M/perm/open/mine'"
assert_eq "65534:65534" "$(stat -c %u:%g "$M/perm/open/mine")" "the new file belongs to that user"
echo rootfile >"$M/perm/open/rootfile"
check_fails "sticky bit: another user cannot delete root's file" as_nobody rm -f "$M/perm/open/rootfile"
check "root reads the other user's file" test "$(cat "$M/perm/open/mine")" = mine
check_fails "another user cannot access a 0700 directory" as_nobody ls "$M/d700"
check "access(2) as another user: R_OK yes on 0644" as_nobody test -r "$M/perm/public"
check_fails "access(2) as another user: W_OK no on 0644" as_nobody test -w "$M/perm/public"

# ------------------------------------------------------------ survives a remount
log "remount"
tree_digest "$M" >"$T/digest.before" 2>"$T/digest.err"
coffer_unmount || fail "coffer unmount exit $?"
check_fails "not mounted after unmount" is_mounted "$MNT"
coffer_mount || fatal "second mount"
tree_digest "$M" >"$T/digest.after" 2>>"$T/digest.err"
assert_file_eq "$T/digest.before" "$T/digest.after" "the whole tree (types, modes, sizes, targets, sha256) survives unmount/mount"
assert_eq 'dirattr' "$(getfattr --absolute-names -d -m - "$M/d1" 2>/dev/null | grep -o 'dirattr')" "xattrs survive a remount"
assert_eq "1 3" "$(stat -c '%t %T' "$M/chardev" 2>&1)" "device numbers survive a remount"
coffer_unmount || fail "final coffer unmount exit $?"
finish
