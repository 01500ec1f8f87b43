#!/usr/bin/env bash
# Interop tests: libzmap and the zmap tool against clients nobody here wrote.
#
#   scripts/interop.sh           run every step; closes with
#                                "interop: N passed, N failed, N skipped"
#   scripts/interop.sh --setup   create the pinned zarr-python virtualenvs
#                                (.venv-zarr2: zarr 2.x, .venv-zarr3: zarr 3.x);
#                                scripts/setup.sh calls this
#
# 1. netCDF-C's NCZarr (ncgen, ncdump, nccopy): a netCDF dataset with groups,
#    attributes and chunked variables is written as an NCZarr directory;
#    libzmap's FILE backend lists exactly the keys `find` sees and reads the
#    same bytes; `zmap cp` copies it (dir -> dir, and dir -> GNZ -> dir) and
#    ncdump of every copy equals ncdump of the original (and of ncgen's own
#    netCDF-4 file); an NCZarr directory written by nccopy is copied too.
# 2. zarr-python 2.x (format 2) and 3.x (format 3): a group of arrays of
#    several dtypes and chunkings goes through `zmap cp` to a directory, to
#    GNZ and back, and to S3 and back (when ZMAP_TEST_S3_URL is set, e.g.
#    http://127.0.0.1:8333/bucket/prefix); zarr reads every array back equal.
#    The dataset libzmap's C quickstart (examples/quickstart.c) writes opens
#    in both zarrs with temperature = float32 0..15.
# 3. numpy + GNZ: a GNZ file written by `zmap cp` is read by a numpy.memmap
#    reader written from the GNZ format alone (tests/interop/gnz_numpy.py).
# 4. ZIP: zarr 2.x and 3.x ZipStore archives (stored and deflated) are read
#    by libzmap (`zmap cp` to a directory, zarr reads it equal), and archives
#    libzmap writes (`zmap cp` DIR -> .zip) are read by both zarrs' ZipStore,
#    arrays equal. ncgen's NCZarr directory, packed in netCDF's zip layout
#    (`zip -r`, the dataset under ds/), is read by libzmap and converted
#    back, ncdump equal; libzmap's own netCDF-layout archive, unpacked by
#    `unzip`, is an NCZarr dataset with the same ncdump. With an S3 server,
#    a ZIP archive goes to S3 and back, zarr 3 reads it equal.
#
# GNZ steps fail if `zmap backends` does not report GNZ as built. S3 steps
# run when ZMAP_TEST_S3_URL is set (the S3 backend, cargo feature "s3", is
# then built in) and are SKIPPED, with the reason printed, when it is not.
# Any failing step makes the exit status 1.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- setup: pinned virtualenvs ----------------------------------------------------
ZARR2_PINS=(zarr==2.18.7 numcodecs==0.15.1 numpy==2.2.6 asciitree==1.0.0
    fasteners==0.20 Deprecated==1.3.1 wrapt==2.5.2)
ZARR3_PINS=(zarr==3.1.6 numcodecs==0.16.6 numpy==2.2.6 donfig==0.8.1.post1
    google-crc32c==1.9.0 packaging==26.3 PyYAML==6.0.3 typing_extensions==4.16.0)

make_venv() {
    local dir=$1 version=$2
    shift 2
    if "$dir/bin/python" -c "import zarr, sys; sys.exit(zarr.__version__ != '$version')" \
        >/dev/null 2>&1; then
        return 0
    fi
    echo "interop setup: creating $dir (zarr $version)"
    rm -rf "$dir"
    python3 -m venv "$dir" && "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}

if [ "${1:-}" = "--setup" ]; then
    if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
        echo "interop setup: installing python3-venv"
        if [ "$(id -u)" -eq 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                python3-venv || exit 1
        else
            sudo apt-get install -y -q --no-install-recommends python3-venv || exit 1
        fi
    fi
    make_venv .venv-zarr2 2.18.7 "${ZARR2_PINS[@]}" || exit 1
    make_venv .venv-zarr3 3.1.6 "${ZARR3_PINS[@]}" || exit 1
    exit 0
fi
if [ $# -ne 0 ]; then
    echo "usage: $0 [--setup]" >&2
    exit 2
fi

# --- the tools under test -----------------------------------------------------------
# With an S3 server to test against, the S3 backend (cargo feature "s3") is built in.
features=()
if [ -n "${ZMAP_TEST_S3_URL:-}" ]; then features=(--features s3); fi
if ! cargo build --quiet -p zmap --lib -p zmap-cli --bin zmap "${features[@]}"; then
    echo "interop: cargo build failed"
    echo "interop: 0 passed, 1 failed"
    exit 1
fi
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
    echo "$repo/target")
PY2=$repo/.venv-zarr2/bin/python
PY3=$repo/.venv-zarr3/bin/python
HERE=$repo/tests/interop

W=$(mktemp -d "${TMPDIR:-/tmp}/zmap-interop.XXXXXX")
trap 'rm -rf "$W"' EXIT
# Private copies: a cargo build running meanwhile (other features) cannot
# swap them under the tests.
mkdir -p "$W/bin"
cp "$target_dir/debug/zmap" "$target_dir/debug/libzmap.so" "$W/bin/" || exit 1
ZMAP=$W/bin/zmap
LIBDIR=$W/bin
export LC_ALL=C

# Asked once: which backends this build has ("file built", "gnz not-built", ...).
if ! BACKENDS=$("$ZMAP" backends); then
    echo "interop: zmap backends failed"
    echo "interop: 0 passed, 1 failed"
    exit 1
fi
echo "$BACKENDS" | sed 's/^/backend: /'
built() { grep -qx "$1 built" <<<"$BACKENDS"; }

passed=0
failed=0
skipped=0
results=()

# step NAME FUNCTION: runs it with its output in a log, shown on failure.
step() {
    local name=$1 fn=$2 t0=$SECONDS log="$W/log.$1" status
    # Not inside `if`: there, bash would ignore the subshell's set -e.
    (set -e; "$fn") >"$log" 2>&1
    status=$?
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        results+=("$(printf 'PASS  %-24s %3ds' "$name" $((SECONDS - t0)))")
        echo "PASS  $name"
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-24s %3ds' "$name" $((SECONDS - t0)))")
        echo "FAIL  $name"
        sed 's/^/    | /' "$log" | tail -40
    fi
}

skip() {
    skipped=$((skipped + 1))
    results+=("$(printf 'SKIP  %-24s       (%s)' "$1" "$2")")
    echo "SKIP  $1 ($2)"
}

# gnz_step NAME FUNCTION: a step that needs the GNZ backend, which is always
# built: its absence is a failure, never a skip.
gnz_step() {
    if built gnz; then
        step "$1" "$2"
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-24s       (gnz backend not built)' "$1")")
        echo "FAIL  $1: zmap has no GNZ backend"
    fi
}

# s3_step NAME FUNCTION: a step that needs an S3 server and the S3 backend.
s3_step() {
    if [ -z "${ZMAP_TEST_S3_URL:-}" ]; then
        skip "$1" "ZMAP_TEST_S3_URL not set"
    elif ! built s3; then
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-24s       (ZMAP_TEST_S3_URL set, s3 backend not built)' "$1")")
        echo "FAIL  $1: ZMAP_TEST_S3_URL is set but zmap has no S3 backend"
    else
        step "$1" "$2"
    fi
}

# --- 1. netCDF-C NCZarr -------------------------------------------------------------
NC=$W/nc
ncurl() { echo "file://$1#mode=nczarr,file"; }

# Keys of a directory, as zmap writes them: "/a/b", directories too.
find_keys() { (cd "$1" && find . -mindepth 1 | sed 's|^\.||' | sort); }
zmap_keys() { "$ZMAP" ls -R "$1" | sed 's|/$||' | sort; }

nczarr_keys() {
    mkdir -p "$NC"
    ncgen -k nc4 -o "$NC/in.nc" "$HERE/nczarr.cdl"
    ncgen -k nc4 -o "$(ncurl "$NC/nc.zarr")" "$HERE/nczarr.cdl"
    find_keys "$NC/nc.zarr" >"$NC/find.txt"
    zmap_keys "$NC/nc.zarr" >"$NC/zmap.txt"
    diff "$NC/find.txt" "$NC/zmap.txt"
    # The dataset has what this test is about: groups, attributes, chunks.
    grep -qx /obs/inner/.zgroup "$NC/zmap.txt"
    grep -qx /temp/.zattrs "$NC/zmap.txt"
    [ "$(grep -c '^/temp/[0-9]' "$NC/zmap.txt")" -ge 6 ]
    echo "$(wc -l <"$NC/zmap.txt") keys, same as find"
}

nczarr_bytes() {
    local n=0 key
    while read -r key; do
        "$ZMAP" cat "$NC/nc.zarr" "$key" | cmp - "$NC/nc.zarr$key"
        n=$((n + 1))
    done < <(cd "$NC/nc.zarr" && find . -type f | sed 's|^\.||')
    [ "$n" -gt 0 ]
    # zmapio-style dump of every object, through a file: URL.
    "$ZMAP" tree --full "$(ncurl "$NC/nc.zarr")" >"$NC/tree.txt"
    [ "$(grep -c '^\[' "$NC/tree.txt")" -eq "$n" ]
    echo "$n objects read back identical"
}

# ncdump of an NCZarr directory, named "interop" whatever the path.
dump() { ncdump -n interop "$(ncurl "$1")"; }

nczarr_cp_file() {
    dump "$NC/nc.zarr" >"$NC/orig.cdl"
    grep -q 'group: inner' "$NC/orig.cdl"
    # NCZarr holds what netCDF-4 holds.
    diff <(ncdump -n interop "$NC/in.nc") "$NC/orig.cdl"
    "$ZMAP" cp -j 3 "$NC/nc.zarr" "$NC/copy.zarr"
    diff "$NC/orig.cdl" <(dump "$NC/copy.zarr")
    # An NCZarr directory written by nccopy, copied the same way.
    nccopy "$NC/in.nc" "$(ncurl "$NC/nccopy.zarr")"
    "$ZMAP" cp "$NC/nccopy.zarr" "$NC/nccopy-copy.zarr"
    diff <(find_keys "$NC/nccopy.zarr") <(find_keys "$NC/nccopy-copy.zarr")
    diff "$NC/orig.cdl" <(dump "$NC/nccopy-copy.zarr")
    echo "ncdump equal after zmap cp (dir -> dir) of ncgen's and nccopy's NCZarr"
}

nczarr_gnz() {
    "$ZMAP" cp "$NC/nc.zarr" "$NC/nc.gnz"
    "$ZMAP" verify "$NC/nc.gnz"
    "$ZMAP" info "$NC/nc.gnz"
    diff <(zmap_keys "$NC/nc.zarr") <(zmap_keys "$NC/nc.gnz")
    "$ZMAP" cp "$NC/nc.gnz" "$NC/back.zarr"
    diff <(find_keys "$NC/nc.zarr") <(find_keys "$NC/back.zarr")
    diff "$NC/orig.cdl" <(dump "$NC/back.zarr")
    echo "ncdump equal after zmap cp dir -> GNZ -> dir"
}

step nczarr-keys nczarr_keys
step nczarr-bytes nczarr_bytes
step nczarr-cp-file nczarr_cp_file
gnz_step nczarr-via-gnz nczarr_gnz

# --- 2. zarr-python 2.x and 3.x -----------------------------------------------------
Z=$W/zarr

zarr_file() { # PY TAG
    mkdir -p "$Z"
    "$1" "$HERE/zarr_io.py" write "$Z/$2"
    "$1" "$HERE/zarr_io.py" check "$Z/$2"
    "$ZMAP" cp -j 4 "$Z/$2" "$Z/$2-copy"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-copy"
    diff <(find_keys "$Z/$2") <(find_keys "$Z/$2-copy")
}

zarr_gnz() { # PY TAG
    "$ZMAP" cp -j 4 "$Z/$2" "$Z/$2.gnz"
    "$ZMAP" verify "$Z/$2.gnz"
    "$ZMAP" cp "$Z/$2.gnz" "$Z/$2-from-gnz"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-from-gnz"
}

zarr_s3() { # PY TAG
    local url="${ZMAP_TEST_S3_URL%/}/zmap-interop-$2-$$"
    "$ZMAP" cp -j 4 "$Z/$2" "$url"
    "$ZMAP" verify "$url"
    diff <(zmap_keys "$Z/$2") <(zmap_keys "$url")
    "$ZMAP" cp "$url" "$Z/$2-from-s3"
    "$ZMAP" rm -r "$url" /
    "$1" "$HERE/zarr_io.py" check "$Z/$2-from-s3"
}

zarr2_file() { zarr_file "$PY2" v2; }
zarr2_gnz() { zarr_gnz "$PY2" v2; }
zarr2_s3() { zarr_s3 "$PY2" v2; }
zarr3_file() { zarr_file "$PY3" v3; }
zarr3_gnz() { zarr_gnz "$PY3" v3; }
zarr3_s3() { zarr_s3 "$PY3" v3; }

step zarr2-file zarr2_file
gnz_step zarr2-via-gnz zarr2_gnz
s3_step zarr2-via-s3 zarr2_s3
step zarr3-file zarr3_file
gnz_step zarr3-via-gnz zarr3_gnz
s3_step zarr3-via-s3 zarr3_s3

QS=$W/quickstart
quickstart_zarr() {
    mkdir -p "$QS"
    # cargo names the library libzmap.so; its soname is libzmap.so.2.
    mkdir -p "$QS/lib"
    ln -sf "$LIBDIR/libzmap.so" "$QS/lib/libzmap.so.2"
    ln -sf "$LIBDIR/libzmap.so" "$QS/lib/libzmap.so"
    cc -std=c11 -Wall -Wextra -Werror -I"$repo/include" "$repo/examples/quickstart.c" \
        -L"$QS/lib" -lzmap -Wl,-rpath,"$QS/lib" -o "$QS/quickstart"
    "$QS/quickstart" "$QS/data"
    "$PY2" "$HERE/zarr_io.py" quickstart "$QS/data/quickstart.nzf"
    "$PY3" "$HERE/zarr_io.py" quickstart "$QS/data/quickstart.nzf"
}

quickstart_gnz() {
    [ -f "$QS/data/quickstart.gnz" ]
    "$ZMAP" cp "$QS/data/quickstart.gnz" "$QS/from-gnz"
    "$PY2" "$HERE/zarr_io.py" quickstart "$QS/from-gnz"
    "$PY3" "$HERE/zarr_io.py" quickstart "$QS/from-gnz"
}

step quickstart-zarr quickstart_zarr
gnz_step quickstart-gnz-zarr quickstart_gnz

# --- 3. numpy + GNZ -------------------------------------------------------------------
numpy_gnz() {
    "$ZMAP" cp -j 4 "$Z/v2" "$Z/numpy.gnz"
    # Byte for byte, and two uncompressed arrays assembled from memmapped chunks.
    "$PY2" "$HERE/gnz_numpy.py" "$Z/numpy.gnz" "$Z/v2" /f4/.zarray
    "$PY2" "$HERE/gnz_numpy.py" "$Z/numpy.gnz" "$Z/v2" /grid/i4/.zarray
    # After changes through libzmap (a grown object, a removed one), too.
    head -c 10000 /dev/urandom >"$Z/grown"
    "$ZMAP" put "$Z/numpy.gnz" /grid/.zattrs "$Z/grown"
    cp "$Z/grown" "$Z/v2/grid/.zattrs"
    "$ZMAP" rm "$Z/numpy.gnz" /i1/0
    rm "$Z/v2/i1/0"
    "$PY2" "$HERE/gnz_numpy.py" "$Z/numpy.gnz" "$Z/v2"
    # And the NCZarr dataset's GNZ copy, when that step made one.
    if [ -f "$NC/nc.gnz" ]; then "$PY2" "$HERE/gnz_numpy.py" "$NC/nc.gnz" "$NC/nc.zarr"; fi
}

gnz_step numpy-memmap-gnz numpy_gnz

# --- 4. ZIP ---------------------------------------------------------------------------
zarr_zip() { # PY TAG
    # zarr's ZipStore, read by libzmap.
    "$1" "$HERE/zarr_io.py" write "$Z/$2-zarr.zip"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-zarr.zip"
    "$ZMAP" verify "$Z/$2-zarr.zip"
    # ($Z/$2 itself was changed by the numpy step; its copy was not.)
    diff <(zmap_keys "$Z/$2-copy") <(zmap_keys "$Z/$2-zarr.zip")
    "$ZMAP" cp "$Z/$2-zarr.zip" "$Z/$2-from-zip"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-from-zip"
    # Deflated entries, too.
    "$1" "$HERE/zarr_io.py" write "$Z/$2.deflated.zip"
    "$ZMAP" info "$Z/$2.deflated.zip" | grep -q "deflated entries"
    "$ZMAP" verify "$Z/$2.deflated.zip"
    "$ZMAP" cp "$Z/$2.deflated.zip" "$Z/$2-from-deflated"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-from-deflated"
    # libzmap's archive (from zarr's directory, and from GNZ), read by zarr.
    "$ZMAP" cp -j 4 "$Z/$2-copy" "$Z/$2-zmap.zip"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-zmap.zip"
    "$ZMAP" cp "$Z/$2.gnz" "$Z/$2-gnz.zip"
    "$1" "$HERE/zarr_io.py" check "$Z/$2-gnz.zip"
    echo "zarr ZipStore <-> libzmap ZIP: arrays equal both ways"
}
zarr2_zip() { zarr_zip "$PY2" v2; }
zarr3_zip() { zarr_zip "$PY3" v3; }

nczarr_zip() {
    local P=$NC/pack
    mkdir -p "$P"
    ncgen -k nc4 -lb -o "file://$P/ds.file#mode=nczarr,file" "$HERE/nczarr.cdl"
    # netCDF's layout: the dataset under ds/ in ds.zip (entry 0: ds/).
    cp -r "$P/ds.file" "$P/ds"
    (cd "$P" && zip -q -r -0 ds.zip ds)
    [ "$(unzip -Z1 "$P/ds.zip" | head -1)" = ds/ ]
    "$ZMAP" info "$P/ds.zip" | grep -q "netCDF"
    "$ZMAP" verify "$P/ds.zip"
    diff <(zmap_keys "$P/ds.file") <(zmap_keys "$P/ds.zip")
    "$ZMAP" cp "$P/ds.zip" "$P/back.file"
    dump "$P/ds.file" >"$P/orig.cdl"
    grep -q 'group: inner' "$P/orig.cdl"
    diff "$P/orig.cdl" <(dump "$P/back.file")
    # libzmap writes netCDF's layout for netCDF's URL; unpacked, it is the
    # same NCZarr dataset.
    "$ZMAP" cp "$P/ds.file" "file://$P/out.zip#mode=nczarr,zip"
    [ "$(unzip -Z1 "$P/out.zip" | head -1)" = out/ ]
    (cd "$P" && mkdir unpacked && cd unpacked && unzip -q ../out.zip)
    diff "$P/orig.cdl" <(dump "$P/unpacked/out")
    echo "ncdump equal: ncgen -> netCDF zip layout -> libzmap -> dir, and libzmap's zip unpacked"
}

zip_step() {
    if built zip; then
        step "$1" "$2"
    else
        failed=$((failed + 1))
        results+=("$(printf 'FAIL  %-24s       (zip backend not built)' "$1")")
        echo "FAIL  $1: zmap has no ZIP backend"
    fi
}

# ZIP <-> S3 (the one backend the Rust CLI tests cannot reach without a server).
zip_s3() {
    local url="${ZMAP_TEST_S3_URL%/}/zmap-interop-zip-$$"
    "$ZMAP" cp -j 4 "$Z/v3-zarr.zip" "$url"
    diff <(zmap_keys "$Z/v3-zarr.zip") <(zmap_keys "$url")
    "$ZMAP" cp "$url" "$Z/v3-from-s3.zip"
    "$ZMAP" rm -r "$url" /
    "$PY3" "$HERE/zarr_io.py" check "$Z/v3-from-s3.zip"
}

zip_step zarr2-zipstore zarr2_zip
zip_step zarr3-zipstore zarr3_zip
zip_step nczarr-zip nczarr_zip
s3_step zip-via-s3 zip_s3

# --- summary ----------------------------------------------------------------------------
echo
printf '%s\n' "${results[@]}"
echo "interop: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
