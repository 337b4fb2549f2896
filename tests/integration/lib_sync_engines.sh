# shellcheck shell=bash
# Real sync engines for the integration tests: two Syncthing instances kept
# in step on loopback, and an rclone mount of a local remote. Sourced by
# test_syncthing.sh and test_rclone.sh INSTEAD of lib.sh (it sources lib.sh):
#
#   SYNC_ENGINES="syncthing"          # or "rclone": the programs the test needs
#   source "$(dirname "$0")/lib_sync_engines.sh"
#
# 1. A needed program that is missing is a failure, never a skip: CI installs
#    them (.ci/run PACKAGES), and a test that skips silently proves nothing.
# 2. The test re-executes itself under `unshare -n`: a private network
#    namespace holding only a loopback interface, so nothing any engine
#    does (discovery, relays, STUN, upgrade checks, usage reports) can
#    leave the machine, and fixed ports cannot clash with anything outside.
#    Only the network is private: the FUSE mounts and files are the host's,
#    so lib.sh's cleanup and .ci/run's leftover-mount check see them.
# 3. Every engine process runs under `timeout` and is ended by its PID in
#    the EXIT trap, before lib.sh's own cleanup; coffer mounts that sit on an
#    rclone mount are unmounted before the rclone mount is.

set -u -o pipefail

_se_missing=()
for _p in unshare ip timeout python3 ${SYNC_ENGINES:-}; do
    command -v "$_p" >/dev/null 2>&1 || _se_missing+=("$_p")
done
case " ${SYNC_ENGINES:-} " in *" rclone "*)
    command -v fusermount3 >/dev/null 2>&1 || _se_missing+=(fusermount3) ;;
esac
if [ "${#_se_missing[@]}" -gt 0 ]; then
    echo "FAIL - $(basename "${0%.sh}"): not installed: ${_se_missing[*]}" \
        "(Debian packages: syncthing, rclone, iproute2, util-linux; .ci/run installs them)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

_se_netns=$(readlink /proc/self/ns/net)
if [ -z "${COFFER_OUTER_NETNS:-}" ] || [ "$COFFER_OUTER_NETNS" = "$_se_netns" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "FAIL - $(basename "${0%.sh}"): needs root (unshare -n, FUSE mounts)" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    if ! _se_err=$(unshare --net -- true 2>&1); then
        echo "FAIL - $(basename "${0%.sh}"): cannot make a private network namespace (unshare --net): $_se_err" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    export COFFER_OUTER_NETNS=$_se_netns
    # The re-executed test has its own watchdog (lib.sh); this outer bound
    # only catches a test that hangs before that watchdog starts or after
    # it ends.
    timeout -k 15 $((${COFFER_TEST_TIMEOUT:-540} + 45)) unshare --net -- "$BASH" "$0" "$@"
    exit $?
fi
# In the private namespace: loopback up, and nothing else there.
ip link set lo up || { echo "FAIL - ip link set lo up" >&2; echo "0 passed, 1 failed"; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- loopback only
# assert_confined: the namespace has no interface but lo and no route out.
assert_confined() {
    local links
    links=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | tr '\n' ' ')
    assert_eq "lo " "$links" "private network namespace: loopback is the only interface"
    assert_match "state UP|LOOPBACK,UP" "$(ip -o link show lo)" "loopback is up"
    check_fails "no route out of the namespace (ip route get 192.0.2.1)" ip route get 192.0.2.1
    check_fails "no IPv6 route out of the namespace (ip -6 route get 2001:db8::1)" ip -6 route get 2001:db8::1
}

# ---------------------------------------------------------------- teardown
# Engine processes this test started: "PID MOUNTPOINT-or--" per line.
: >"$T/.engines"
SE_MAX_SECONDS=$(( ${COFFER_TEST_TIMEOUT:-540} + 30 ))

# _se_tree PID: PID and all its descendants, parents first.
_se_tree() {
    local k
    echo "$1"
    for k in $(ps -o pid= --ppid "$1" 2>/dev/null); do _se_tree "$k"; done
}

# _se_end PID: TERM to PID (timeout forwards it to the engine, which ends
# its own children), then KILL whatever of that process tree is left, each
# by the PID it had before the TERM. Returns 1 if something survived.
_se_end() {
    local pid=$1 tree p left=""
    tree=$(_se_tree "$pid")
    kill -TERM "$pid" 2>/dev/null
    wait_gone "$pid" 20 || echo "engine PID $pid ignored TERM: KILL" >&2
    for p in $tree; do
        kill -0 "$p" 2>/dev/null || continue
        kill -KILL "$p" 2>/dev/null
        wait_gone "$p" 5 || left+=" $p"
    done
    [ -z "$left" ] || { echo "engine processes left:$left" >&2; return 1; }
}

# _se_unmount_coffer: the coffer mounts of this test, as lib.sh's cleanup
# does them, but first: they may sit on an engine's mount.
_se_unmount_coffer() {
    local mp
    for mp in $(sort -u "$T/.mounts"); do
        is_mounted "$mp" || continue
        timeout 30 "$COFFER" unmount "$mp" </dev/null >/dev/null 2>&1
        is_mounted "$mp" && { fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; }
    done
}

sync_engines_teardown() {
    local pid mp n
    [ -s "$T/.engines" ] || return 0
    _se_unmount_coffer
    while read -r pid mp; do
        if [ "$mp" != - ] && is_mounted "$mp"; then
            for n in 1 2 3 4 5; do
                fusermount3 -u "$mp" 2>/dev/null && break
                sleep 1
            done
            is_mounted "$mp" && { fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; }
        fi
        _se_end "$pid"
    done <"$T/.engines"
    : >"$T/.engines"
}

_se_exit() {
    local rc=$?
    sync_engines_teardown
    (exit "$rc")
    _cleanup
}
trap _se_exit EXIT

# waiting_check ISSUE DESC CMD...: a check of behaviour that an open issue
# is to bring. Skipped (and said so) unless COFFER_RUN_WAITING=1, which runs
# it as an ordinary check: set it to see whether the issue is done.
waiting_check() {
    local issue=$1 desc=$2
    shift 2
    if [ "${COFFER_RUN_WAITING:-0}" = 1 ]; then
        check "$desc" "$@"
    else
        log "SKIP (waits for $issue; COFFER_RUN_WAITING=1 runs it): $desc"
    fi
}

# ---------------------------------------------------------------- syncthing
# Two (or more) instances, each with its own home, REST API on 127.0.0.1
# with a generated API key, listening on 127.0.0.1 only, every announcement,
# relay, NAT/STUN, usage/crash report and upgrade switched off, sharing one
# folder: the vault folder, each instance its own copy.
ST_FOLDER_ID=coffer-vault
ST_RESCAN_S=${ST_RESCAN_S:-5}
declare -A ST_HOME ST_GUI ST_LISTEN ST_KEY ST_ID ST_DIR ST_PID
ST_NAMES=()

_st_env() {
    env -u STGUIADDRESS -u STGUIAPIKEY -u STTRACE -u STMONITORED \
        HOME="$1" STNOUPGRADE=1 STNORESTART=1 STNODEFAULTFOLDER=1 "${@:2}"
}

# st_init NAME FOLDER GUI_PORT SYNC_PORT: keys and device ID of one instance.
st_init() {
    local n=$1 home=$T/syncthing-$1 out
    mkdir -p "$home" "$2"
    ST_NAMES+=("$n")
    ST_HOME[$n]=$home
    ST_DIR[$n]=$(cd "$2" && pwd)
    ST_GUI[$n]=127.0.0.1:$3
    ST_LISTEN[$n]=tcp://127.0.0.1:$4
    ST_KEY[$n]=$(head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
    out=$(_st_env "$home" timeout 60 syncthing generate --home="$home" --no-default-folder 2>&1) ||
        { printf '%s\n' "$out" >&2; return 1; }
    ST_ID[$n]=$(printf '%s\n' "$out" | grep -oE '[A-Z0-9]{7}(-[A-Z0-9]{7}){7}' | head -n 1)
    [ -n "${ST_ID[$n]}" ] || { printf 'no device ID in:\n%s\n' "$out" >&2; return 1; }
}

# st_configure NAME: writes the whole config.xml (after every st_init): the
# other instances as devices with static addresses, the shared folder.
st_configure() {
    local n=$1 p devices="" folder_devices=""
    for p in "${ST_NAMES[@]}"; do
        folder_devices+="            <device id=\"${ST_ID[$p]}\" introducedBy=\"\"></device>"$'\n'
        local addr=dynamic
        [ "$p" != "$n" ] && addr=${ST_LISTEN[$p]}
        devices+=$(printf '    <device id="%s" name="%s" compression="metadata" introducer="false">\n        <address>%s</address>\n        <paused>false</paused>\n        <autoAcceptFolders>false</autoAcceptFolders>\n    </device>' \
            "${ST_ID[$p]}" "$p" "$addr")$'\n'
    done
    cat >"${ST_HOME[$n]}/config.xml" <<XML
<configuration version="36">
    <folder id="$ST_FOLDER_ID" label="coffer vault" path="${ST_DIR[$n]}" type="sendreceive" rescanIntervalS="$ST_RESCAN_S" fsWatcherEnabled="true" fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
$folder_devices        <minDiskFree unit="%">0</minDiskFree>
        <versioning></versioning>
        <markerName>.stfolder</markerName>
        <maxConflicts>10</maxConflicts>
        <paused>false</paused>
    </folder>
$devices    <gui enabled="true" tls="false" debugging="false">
        <address>${ST_GUI[$n]}</address>
        <apikey>${ST_KEY[$n]}</apikey>
        <theme>default</theme>
    </gui>
    <options>
        <listenAddress>${ST_LISTEN[$n]}</listenAddress>
        <globalAnnounceServer></globalAnnounceServer>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <stunServer></stunServer>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
        <stunKeepaliveMinS>0</stunKeepaliveMinS>
        <announceLANAddresses>false</announceLANAddresses>
        <urAccepted>-1</urAccepted>
        <urSeen>3</urSeen>
        <crashReportingEnabled>false</crashReportingEnabled>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <upgradeToPreReleases>false</upgradeToPreReleases>
        <startBrowser>false</startBrowser>
        <restartOnWakeup>false</restartOnWakeup>
        <reconnectionIntervalS>1</reconnectionIntervalS>
        <progressUpdateIntervalS>-1</progressUpdateIntervalS>
        <minHomeDiskFree unit="%">0</minHomeDiskFree>
        <setLowPriority>false</setLowPriority>
    </options>
</configuration>
XML
}

# st_rest NAME METHOD PATH: one REST call; prints the reply body.
st_rest() { python3 "$T/st_rest.py" call "$1" "$2" "$3"; }

# st_start NAME: starts the instance (bounded by timeout) and waits until
# its REST API answers with the expected device ID.
st_start() {
    local n=$1 home=${ST_HOME[$1]} i id
    [ -f "$T/st_rest.py" ] || _st_write_rest_helper
    _st_write_instances
    # env execs timeout, so $! is timeout's PID (a function run in the
    # background would give a subshell's). Syncthing 1.19 keeps its monitor
    # process even with --no-restart: timeout -> monitor -> syncthing.
    env -u STGUIADDRESS -u STGUIAPIKEY -u STTRACE -u STMONITORED \
        HOME="$home" STNOUPGRADE=1 STNORESTART=1 STNODEFAULTFOLDER=1 \
        timeout -k 10 "$SE_MAX_SECONDS" syncthing serve --home="$home" \
        --no-browser --no-restart --no-upgrade --logflags=3 </dev/null >"$home/syncthing.log" 2>&1 &
    ST_PID[$n]=$!
    echo "${ST_PID[$n]} -" >>"$T/.engines"
    for ((i = 0; i < 300; i++)); do
        kill -0 "${ST_PID[$n]}" 2>/dev/null || { tail -n 20 "$home/syncthing.log" >&2; return 1; }
        id=$(st_rest "$n" GET /rest/system/status 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["myID"])' 2>/dev/null)
        [ "$id" = "${ST_ID[$n]}" ] && return 0
        sleep 0.1
    done
    echo "syncthing $n: REST API did not answer on ${ST_GUI[$n]}" >&2
    tail -n 20 "$home/syncthing.log" >&2
    return 1
}

# st_stop NAME: ends the instance and its children by their PIDs; fails if
# any of them is left.
st_stop() {
    local pid=${ST_PID[$1]:-}
    [ -n "$pid" ] || return 0
    ST_PID[$1]=
    sed -i "/^$pid /d" "$T/.engines"
    _se_end "$pid"
}

# st_wait_connected [SECONDS]: every instance is connected to every other.
st_wait_connected() { python3 "$T/st_rest.py" wait-connected "${1:-60}"; }

# st_wait_in_sync [SECONDS]: asks every instance to rescan the folder, then
# waits until, twice in a row: every instance is idle with nothing to pull,
# sees every other at 100 % completion, all agree on the global file, folder
# and byte counts, local equals global, and the folder copies hold the same
# files with the same bytes (Syncthing's own marker and temp files aside).
st_wait_in_sync() { python3 "$T/st_rest.py" wait-in-sync "${1:-90}"; }

st_dump_logs() {
    local n
    for n in "${ST_NAMES[@]}"; do
        echo "---- last lines of syncthing $n's log"
        tail -n "${1:-25}" "${ST_HOME[$n]}/syncthing.log" 2>/dev/null
    done
}

_st_write_instances() {
    local n
    {
        echo "{\"folder\": \"$ST_FOLDER_ID\", \"instances\": {"
        local first=1
        for n in "${ST_NAMES[@]}"; do
            [ "$first" = 1 ] || echo ","
            first=0
            printf '"%s": {"gui": "%s", "key": "%s", "id": "%s", "dir": "%s"}' \
                "$n" "${ST_GUI[$n]}" "${ST_KEY[$n]}" "${ST_ID[$n]}" "${ST_DIR[$n]}"
        done
        echo "}}"
    } >"$T/syncthing.json"
}

_st_write_rest_helper() {
    cat >"$T/st_rest.py" <<'PY'
import hashlib, json, os, sys, time, urllib.request, urllib.error

CONF = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "syncthing.json")))
FOLDER = CONF["folder"]
INST = CONF["instances"]
# No proxy from the environment: every call goes to 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def call(name, method, path, timeout=30):
    i = INST[name]
    req = urllib.request.Request("http://%s%s" % (i["gui"], path), method=method,
                                 headers={"X-API-Key": i["key"]}, data=b"" if method == "POST" else None)
    with OPENER.open(req, timeout=timeout) as r:
        return r.read().decode()

def jcall(name, path):
    return json.loads(call(name, "GET", path))

def internal(name):
    return (name in (".stfolder", ".stignore", ".stversions") or
            (name.startswith(".syncthing.") and name.endswith(".tmp")) or
            (name.startswith("~syncthing~") and name.endswith(".tmp")))

def tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not internal(x)]
        rel = os.path.relpath(d, root)
        for x in dirs:
            out[os.path.normpath(os.path.join(rel, x))] = "dir"
        for x in files:
            if internal(x):
                continue
            p = os.path.join(d, x)
            if os.path.islink(p):
                out[os.path.normpath(os.path.join(rel, x))] = "link " + os.readlink(p)
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            out[os.path.normpath(os.path.join(rel, x))] = "file %d %s" % (os.path.getsize(p), h.hexdigest())
    return out

def in_sync():
    names = sorted(INST)
    counts = {}
    for n in names:
        st = jcall(n, "/rest/db/status?folder=" + FOLDER)
        if st.get("state") != "idle":
            return False, "%s: folder state %s" % (n, st.get("state"))
        if st.get("needTotalItems", 0) or st.get("pullErrors", 0):
            return False, "%s: needs %d item(s), %d pull error(s)" % (n, st.get("needTotalItems", 0),
                                                                     st.get("pullErrors", 0))
        for k in ("Files", "Directories", "Symlinks", "Bytes"):
            if st.get("local" + k) != st.get("global" + k):
                return False, "%s: local%s %s != global%s %s" % (n, k, st.get("local" + k), k, st.get("global" + k))
        counts[n] = tuple(st.get("global" + k) for k in ("Files", "Directories", "Symlinks", "Bytes"))
        for p in names:
            if p == n:
                continue
            c = jcall(n, "/rest/db/completion?folder=%s&device=%s" % (FOLDER, INST[p]["id"]))
            if c.get("completion") != 100 or c.get("needItems", 0):
                return False, "%s sees %s at %s %% (%s item(s) to go)" % (n, p, c.get("completion"), c.get("needItems"))
    if len(set(counts.values())) != 1:
        return False, "global counts differ: %s" % counts
    trees = {n: tree(INST[n]["dir"]) for n in names}
    first = trees[names[0]]
    for n in names[1:]:
        if trees[n] != first:
            diff = sorted(set(first.items()) ^ set(trees[n].items()))[:6]
            return False, "folders %s and %s differ: %s" % (names[0], n, diff)
    return True, "%d entries, counts %s" % (len(first), counts[names[0]])

def wait_in_sync(limit):
    deadline = time.monotonic() + limit
    t0 = time.monotonic()
    for n in sorted(INST):
        call(n, "POST", "/rest/db/scan?folder=" + FOLDER, timeout=max(1, deadline - time.monotonic()))
    good, why = 0, "never checked"
    while time.monotonic() < deadline:
        try:
            ok, why = in_sync()
        except (OSError, ValueError, urllib.error.URLError) as e:
            ok, why = False, "error: %r" % e
        good = good + 1 if ok else 0
        if good >= 2:
            print("in sync after %.1f s: %s" % (time.monotonic() - t0, why))
            return 0
        time.sleep(0.5)
    print("NOT in sync after %d s: %s" % (limit, why))
    for n in sorted(INST):
        try:
            print(n, "status:", call(n, "GET", "/rest/db/status?folder=" + FOLDER).replace("\n", " ")[:1500])
            print(n, "errors:", call(n, "GET", "/rest/folder/errors?folder=" + FOLDER).replace("\n", " ")[:800])
        except Exception as e:
            print(n, "status unavailable:", repr(e))
    return 1

def wait_connected(limit):
    deadline = time.monotonic() + limit
    missing = "never checked"
    while time.monotonic() < deadline:
        missing = []
        for n in INST:
            try:
                conns = jcall(n, "/rest/system/connections")["connections"]
            except (OSError, ValueError, KeyError, urllib.error.URLError) as e:
                missing.append("%s: %r" % (n, e))
                continue
            for p in INST:
                if p != n and not conns.get(INST[p]["id"], {}).get("connected"):
                    missing.append("%s -> %s" % (n, p))
        if not missing:
            return 0
        time.sleep(0.2)
    print("not connected after %d s: %s" % (limit, missing))
    return 1

cmd = sys.argv[1]
if cmd == "call":
    sys.stdout.write(call(sys.argv[2], sys.argv[3], sys.argv[4]))
elif cmd == "wait-in-sync":
    sys.exit(wait_in_sync(float(sys.argv[2])))
elif cmd == "wait-connected":
    sys.exit(wait_connected(float(sys.argv[2])))
else:
    sys.exit("unknown command " + cmd)
PY
}

# ---------------------------------------------------------------- rclone
# rclone_mount REMOTE_DIR MOUNTPOINT: a remote of type local (a config file
# of this test, no network) on REMOTE_DIR, mounted with --vfs-cache-mode
# writes: a file written through the mount is uploaded to REMOTE_DIR only
# some seconds after it is closed, as a real cloud remote's would be.
RCLONE_RC=127.0.0.1:5572
rclone_mount() {
    local remote=$1 mp=$2 i
    mkdir -p "$remote" "$mp" "$T/rclone-cache"
    printf '[cofferlocal]\ntype = local\n' >"$T/rclone.conf"
    timeout -k 10 "$SE_MAX_SECONDS" rclone mount "cofferlocal:$remote" "$mp" --config "$T/rclone.conf" \
        --cache-dir "$T/rclone-cache" --vfs-cache-mode writes \
        --rc --rc-addr "$RCLONE_RC" --rc-no-auth --log-file "$T/rclone.log" -v </dev/null >/dev/null 2>&1 &
    RCLONE_PID=$!
    RCLONE_MNT=$mp
    echo "$RCLONE_PID $mp" >>"$T/.engines"
    for ((i = 0; i < 300; i++)); do
        is_mounted "$mp" && return 0
        kill -0 "$RCLONE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "rclone mount did not appear on $mp" >&2
    tail -n 20 "$T/rclone.log" >&2
    return 1
}

# rclone_rc COMMAND: rclone's remote control, on loopback in this namespace.
rclone_rc() { timeout 30 rclone rc --url "http://$RCLONE_RC/" "$@"; }

# rclone_wait_uploaded [SECONDS]: rclone's VFS cache has nothing queued or
# uploading.
rclone_wait_uploaded() {
    local limit=${1:-60} t0=$SECONDS out
    while [ $((SECONDS - t0)) -lt "$limit" ]; do
        out=$(rclone_rc vfs/stats 2>&1) || { sleep 0.5; continue; }
        if python3 -c 'import json,sys; c=json.load(sys.stdin)["diskCache"]; sys.exit(0 if c["uploadsInProgress"] == 0 and c["uploadsQueued"] == 0 else 1)' <<<"$out"; then
            return 0
        fi
        sleep 0.5
    done
    echo "rclone still uploading after ${limit}s:" >&2
    printf '%s\n' "$out" | head -n 14 >&2
    return 1
}

# rclone_unmount: unmounts the rclone mount (fusermount3 -u) and waits for
# rclone to exit.
rclone_unmount() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        is_mounted "$RCLONE_MNT" || break
        fusermount3 -u "$RCLONE_MNT" 2>/dev/null && break
        sleep 1
    done
    is_mounted "$RCLONE_MNT" && return 1
    wait_gone "$RCLONE_PID" 30 || return 1
    sed -i "/^$RCLONE_PID /d" "$T/.engines"
}
