#!/usr/bin/env bash
# Concurrency stress: many processes on one mount for a bounded time —
# writers on their own files and on one shared file, renamers moving files
# between folders, readers listing and reading, and `coffer sync` in a loop —
# then the invariants: every writer's files hold exactly what it last wrote,
# fsck is clean, and a new device rebuilds the same tree.
source "$(dirname "$0")/lib.sh"

SECONDS_RUN=${COFFER_STRESS_SECONDS:-25}
coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

log "stress for ${SECONDS_RUN}s: 4 writers, 2 renamers, 2 readers, sync loop"
( end=$((SECONDS + SECONDS_RUN)); n=0
  while [ $SECONDS -lt $end ]; do coffer sync "$MNT" >/dev/null || echo "sync failed" >&2; n=$((n + 1)); sleep 0.5; done
  echo "$n" >"$T/syncs" ) &
sync_loop=$!

python3 - "$MNT" "$T/manifest" "$SECONDS_RUN" <<'PY'
import hashlib, multiprocessing as mp, os, random, sys, time

mnt, manifest, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + secs

def writer(i, q):
    rnd = random.Random(i)
    d = os.path.join(mnt, "w%d" % i)
    os.makedirs(d, exist_ok=True)
    model = {}
    ops = 0
    while time.time() < deadline:
        name = "f%d" % rnd.randrange(12)
        p = os.path.join(d, name)
        cur = model.get(name, b"")
        kind = rnd.random()
        if kind < 0.6:
            off = rnd.randrange(0, len(cur) + 70000)
            data = rnd.randbytes(rnd.randrange(1, 70000))
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, data, off)
            if rnd.random() < 0.2: os.fsync(fd)
            os.close(fd)
            buf = bytearray(cur)
            if len(buf) < off: buf.extend(b"\0" * (off - len(buf)))
            buf[off:off + len(data)] = data
            model[name] = bytes(buf)
        elif kind < 0.75 and name in model:
            size = rnd.randrange(0, len(cur) + 1)
            os.truncate(p, size)
            model[name] = cur[:size]
        elif kind < 0.85 and name in model:
            os.unlink(p)
            del model[name]
        else:
            if name in model:
                with open(p, "rb") as f:
                    got = f.read()
                if got != model[name]:
                    q.put(("mismatch", p, len(got), len(model[name])))
                    return
        ops += 1
    # the shared file: every writer appends whole records with O_APPEND
    with open(os.path.join(mnt, "shared.log"), "ab") as f:
        for k in range(200):
            f.write(b"%d:%06d\n" % (i, k))
    q.put(("done", i, ops, {n: hashlib.sha256(v).hexdigest() for n, v in model.items()}))

def renamer(i, q):
    rnd = random.Random(100 + i)
    a, b = os.path.join(mnt, "ra"), os.path.join(mnt, "rb")
    os.makedirs(a, exist_ok=True); os.makedirs(b, exist_ok=True)
    for k in range(20):
        with open(os.path.join(a, "r%d-%d" % (i, k)), "wb") as f:
            f.write(b"renamer %d file %d\n" % (i, k))
    ops = 0
    while time.time() < deadline:
        k = rnd.randrange(20)
        n = "r%d-%d" % (i, k)
        src, dst = (a, b) if os.path.exists(os.path.join(a, n)) else (b, a)
        try:
            os.rename(os.path.join(src, n), os.path.join(dst, n))
            ops += 1
        except FileNotFoundError:
            q.put(("mismatch", n, 0, 0)); return
    q.put(("renamer", i, ops))

def reader(i, q):
    ops = 0
    while time.time() < deadline:
        for root, dirs, files in os.walk(mnt):
            for f in files:
                try:
                    with open(os.path.join(root, f), "rb") as fh:
                        fh.read(1 << 20)
                except FileNotFoundError:
                    pass  # raced with an unlink or a rename: fine
                ops += 1
    q.put(("reader", i, ops))

q = mp.Queue()
procs = [mp.Process(target=writer, args=(i, q)) for i in range(4)]
procs += [mp.Process(target=renamer, args=(i, q)) for i in range(2)]
procs += [mp.Process(target=reader, args=(i, q)) for i in range(2)]
for p in procs: p.start()
results = [q.get(timeout=secs + 120) for _ in procs]
for p in procs: p.join(timeout=60)
bad = [r for r in results if r[0] == "mismatch"]
if bad:
    print("MISMATCH", bad); sys.exit(1)
with open(manifest, "w") as m:
    total = 0
    for r in results:
        if r[0] == "done":
            total += r[2]
            for n, h in sorted(r[3].items()):
                m.write("%s  w%d/%s\n" % (h, r[1], n))
        else:
            total += r[2]
    print("operations:", total)
PY
rc=$?
wait "$sync_loop"
assert_eq 0 "$rc" "no process saw wrong bytes or a lost file during the stress"
log "syncs during the stress: $(cat "$T/syncs" 2>/dev/null)"
check "every writer's files hold what it last wrote" bash -c "cd '$MNT' && sha256sum --quiet -c '$T/manifest'"
assert_eq 800 "$(wc -l <"$MNT/shared.log")" "O_APPEND from 4 processes: no record lost"
assert_eq 40 "$(( $(ls "$MNT/ra" | wc -l) + $(ls "$MNT/rb" | wc -l) ))" "renamed files: none lost or doubled"
coffer_unmount || fail "unmount"
check "fsck is clean after the stress" coffer fsck "$CLOUD" --password-file "$PW"
STATE=$T/state-2
coffer_mount || fatal "mount as a new device"
check "new device: every writer's files" bash -c "cd '$MNT' && sha256sum --quiet -c '$T/manifest'"
assert_eq 800 "$(wc -l <"$MNT/shared.log")" "new device: the shared log"
coffer_unmount || fail "unmount new device"

finish
