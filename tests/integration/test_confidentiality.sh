#!/usr/bin/env bash
# Confidentiality: after writing files with distinctive names, contents,
# symlink targets and xattrs and syncing, neither the vault folder (the
# cloud) nor the unmounted local state (a stolen laptop) holds any of them in
# plaintext, and no name from the tree appears in the vault's file names.
source "$(dirname "$0")/lib.sh"

coffer_init || fatal "coffer init"
coffer_mount || fatal "coffer mount"
require_mounted

DIRNAME=Directory-Name-Kumquat-6681
FILENAME=Zebra-Quokka-Secret-Name-7431.txt
SMALLNAME=Tiny-Inline-Name-Walrus-2207
CONTENT=PLAINTEXT-MARKER-Xylophone-9921
SMALL=Small-Content-Narwhal-4410
TARGET=/very/secret/Symlink-Target-Marmalade-5512
XNAME=user.Xattr-Name-Peppercorn
XVALUE=Xattr-Value-Blueberry-3390
LINKNAME=Link-Name-Pangolin-8852
FIFONAME=Fifo-Name-Axolotl-1190

mkdir -p "$MNT/$DIRNAME/sub"
for i in $(seq 1 20000); do printf '%s line %d\n' "$CONTENT" "$i"; done >"$MNT/$DIRNAME/$FILENAME"
printf '%s' "$SMALL" >"$MNT/$DIRNAME/sub/$SMALLNAME"
ln -s "$TARGET" "$MNT/$DIRNAME/$LINKNAME"
setfattr -n "$XNAME" -v "$XVALUE" "$MNT/$DIRNAME/$FILENAME"
mkfifo "$MNT/$FIFONAME"
# an all-zero file and a file of one repeated byte: no plaintext runs either
head -c 1048576 /dev/zero >"$MNT/zeros"
head -c 1048576 /dev/zero | tr '\0' 'Q' >"$MNT/qqqq"
check "coffer sync" coffer sync "$MNT"
coffer_unmount || fail "coffer unmount exit $?"

markers=("$DIRNAME" "$FILENAME" "$SMALLNAME" "$CONTENT" "$SMALL" "$TARGET" "Symlink-Target-Marmalade"
    "${XNAME#user.}" "$XVALUE" "$LINKNAME" "$FIFONAME" "Kumquat" "Xylophone")
for m in "${markers[@]}"; do
    hits=$(grep -rlaF -- "$m" "$CLOUD" 2>&1)
    assert_eq "" "$hits" "vault folder: grep -r finds no '$m'"
done
check_fails "vault folder: no 4 KiB run of the repeated byte" grep -rqaF "$(head -c 4096 /dev/zero | tr '\0' Q)" "$CLOUD"
for m in "$DIRNAME" "$FILENAME" "$SMALLNAME" "$LINKNAME" "$FIFONAME" "Kumquat" "Zebra" "zeros" "qqqq"; do
    assert_eq "" "$(find "$CLOUD" -iname "*$m*")" "vault folder: no path contains '$m'"
done
assert_eq "" "$(cd "$CLOUD" && find . | grep -vE '^\.(/coffer\.vault|/(objects|journal|snapshots|tmp)(/.*)?)?$')" \
    "vault folder holds only coffer.vault, objects/, journal/, snapshots/, tmp/"

# The local state of an unmounted vault (a stolen laptop) keeps names and
# contents encrypted too. The daemon log may name files (tamper reports),
# so it is left out here; docs/SECURITY.md says so.
for m in "${markers[@]}"; do
    hits=$(grep -rlaF --exclude='coffer.log*' -- "$m" "$STATE" 2>&1)
    assert_eq "" "$hits" "local state (unmounted): grep -r finds no '$m'"
done

# ...and it still mounts and reads back: the markers were really written.
coffer_mount || fatal "mount again"
assert_eq "$TARGET" "$(readlink "$MNT/$DIRNAME/$LINKNAME")" "symlink target reads back"
assert_eq "$XVALUE" "$(getfattr --absolute-names --only-values -n "$XNAME" "$MNT/$DIRNAME/$FILENAME" 2>&1)" "xattr reads back"
assert_eq 20000 "$(grep -c "$CONTENT" "$MNT/$DIRNAME/$FILENAME")" "content reads back"
assert_eq "$SMALL" "$(cat "$MNT/$DIRNAME/sub/$SMALLNAME")" "small file reads back"
coffer_unmount || fail "coffer unmount exit $?"

finish
