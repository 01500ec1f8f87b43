#!/usr/bin/env bash
# The netCDF bridge (libzmap_netcdf.so) under Debian's netCDF tools:
#   bridge.sh BRIDGE_SO ZMAP_CLI CDL TMPDIR
# - ncgen CDL into a GNZ file through the bridge (LD_PRELOAD): ncdump equals
#   ncdump of the same CDL written by netCDF alone into a directory, and
#   `zmap ls` / `zmap tree` show its keys;
# - nccopy a netCDF-4 file into GNZ (and, with ZMAP_TEST_S3_URL and the AWS_*
#   variables of scripts/seaweedfs.sh, into S3) and back: ncdump equal, the
#   bridge's S3 request counts printed;
# - pass-through: NCZarr directories, netCDF-4 and classic files give the
#   same ncdump with the bridge loaded as without;
# - zip: where netCDF has no zip support, #mode=nczarr,zip is served by
#   libzmap's ZIP backend (ncgen into it, ncdump of a packed directory);
# - Python's netCDF4 module (if installed) reads the GNZ dataset.
# Exit 77 (skipped) without netCDF's tools.
set -euo pipefail

bridge=$1 zmap=$2 cdl=$3 tmp=$4
for tool in ncgen ncdump nccopy; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not found (netcdf-bin)"; exit 77; }
done
[ -f "$bridge" ] || { echo "no bridge library at $bridge" >&2; exit 1; }
rm -rf "$tmp" && mkdir -p "$tmp" && cd "$tmp"
export ZMAP_NETCDF_REQUEST_LOG=$tmp/requests.log
fail() { echo "FAIL: $*" >&2; exit 1; }
with_bridge() { LD_PRELOAD="$bridge" "$@"; }
# ncdump with the dataset named "ds" (names come from the path otherwise).
dump() { ncdump -n ds "$@"; }
same() { # same NAME FILE1 FILE2
    if ! cmp -s "$2" "$3"; then diff "$2" "$3" | head -20 >&2; fail "$1: ncdump differs"; fi
    echo "ok: $1"
}

nczarr() { echo "file://$tmp/$1#mode=nczarr,file"; }

# 1. ncgen into GNZ through the bridge == ncgen into a directory by netCDF alone.
ncgen -4 -o "$(nczarr dir.file)" "$cdl"
with_bridge ncgen -4 -o "$(nczarr ds.gnz)" "$cdl"
[ -f ds.gnz ] && [ "$(head -c 4 ds.gnz)" = GNZ1 ] || fail "ds.gnz is not a GNZ file"
dump "$(nczarr dir.file)" > dir.cdl
with_bridge dump "$(nczarr ds.gnz)" > gnz.cdl
grep -q 'gd = 1.25, _' gnz.cdl || fail "nested group data missing"
same "ncgen -> GNZ (bridge) vs directory (netCDF)" dir.cdl gnz.cdl
"$zmap" ls ds.gnz > ls.txt
grep -qx 'g1/' ls.txt && grep -qx '.zgroup' ls.txt || fail "zmap ls: $(cat ls.txt)"
"$zmap" tree ds.gnz > tree.txt
grep -q '/g1/g2/gd/.zarray' tree.txt && grep -q '/f/0.0' tree.txt || fail "zmap tree"
echo "ok: zmap ls / tree show the keys ($(wc -l < tree.txt) lines of tree)"

# 2. nccopy netCDF-4 -> GNZ -> back (nccopy 4.9.0 cannot copy NCZarr to
# netCDF-4, with or without the bridge: nc_def_var_endian gives NC_EINVAL;
# the way back is ncdump | ncgen).
ncgen -4 -o src.nc "$cdl"
dump src.nc > src.cdl
with_bridge nccopy src.nc "$(nczarr copy.gnz)"
[ "$(head -c 4 copy.gnz)" = GNZ1 ] || fail "copy.gnz is not a GNZ file"
with_bridge dump "$(nczarr copy.gnz)" > copy.cdl
same "nccopy netCDF-4 -> GNZ" src.cdl copy.cdl
with_bridge ncdump "$(nczarr copy.gnz)" | ncgen -4 -o back.nc
dump back.nc > back.cdl
same "GNZ -> netCDF-4" src.cdl back.cdl

# 3. Pass-through: what the bridge does not serve behaves as without it.
sed '/^group:/,$d' "$cdl" > classic.cdl && echo '}' >> classic.cdl  # no groups in classic
ncgen -3 -o classic.nc classic.cdl
for target in "$(nczarr dir.file)" src.nc classic.nc; do
    dump "$target" > alone.cdl
    with_bridge dump "$target" > bridged.cdl
    same "pass-through: $target" alone.cdl bridged.cdl
done
with_bridge nccopy src.nc "$(nczarr bridged.file)"
[ -d bridged.file ] || fail "a plain NCZarr path must stay a directory"
dump "$(nczarr bridged.file)" > bridged-dir.cdl
same "pass-through: nccopy into an NCZarr directory" src.cdl bridged-dir.cdl
# The same failure as netCDF alone for a URL nobody serves.
if with_bridge ncdump "file://$tmp/missing.gnz#mode=nczarr,file" >/dev/null 2>&1; then
    fail "a missing GNZ file opened"
fi
echo "ok: a missing GNZ file is an error"

# 3b. Zip (#mode=nczarr,zip): a netCDF built without zip (Debian's 4.9.0)
# answers NC_ENOTBUILT, and the bridge then serves the archive with libzmap's
# ZIP backend (netCDF's layout: data.zip holds data/.zgroup, ...).
zipurl() { echo "file://$tmp/$1#mode=nczarr,zip"; }
if ncdump "$(nczarr dir.file)" >/dev/null 2>&1 && ! ncgen -4 -o "$(zipurl alone.zip)" "$cdl" 2>/dev/null; then
    with_bridge ncgen -4 -o "$(zipurl data.zip)" "$cdl"
    "$zmap" ls "$(zipurl data.zip)" | grep -qx 'g1/' || fail "zmap ls of the zip written through the bridge"
    unzip -Z1 data.zip > entries.txt
    [ "$(head -n 1 entries.txt)" = data/ ] || fail "data.zip is not in netCDF's layout: $(head -n 3 entries.txt)"
    with_bridge dump "$(zipurl data.zip)" > zip.cdl
    same "ncgen -> zip (bridge) vs directory (netCDF)" dir.cdl zip.cdl
    # A directory written by netCDF alone, zipped by hand in netCDF's layout.
    rm -rf packed && mkdir -p packed && cp -r dir.file packed/packed
    (cd packed && zip -qr -0 ../packed.zip packed)
    with_bridge dump "$(zipurl packed.zip)" > packed.cdl
    same "ncdump of a packed NCZarr zip (bridge)" dir.cdl packed.cdl
else
    echo "zip part skipped: this netCDF serves #mode=nczarr,zip itself"
fi

# 4. S3 (SeaweedFS from scripts/test.sh), through netCDF's #mode=nczarr,s3.
if [ -n "${ZMAP_TEST_S3_URL:-}" ]; then
    s3="${ZMAP_TEST_S3_URL}/netcdf-bridge-$$"
    with_bridge nccopy src.nc "$s3/copy#mode=nczarr,s3"
    with_bridge dump "$s3/copy#mode=nczarr,s3" > s3.cdl
    same "nccopy netCDF-4 -> S3" src.cdl s3.cdl
    with_bridge ncdump "$s3/copy#mode=nczarr,s3" | ncgen -4 -o s3back.nc
    dump s3back.nc > s3back.cdl
    same "S3 -> netCDF-4" src.cdl s3back.cdl
    "$zmap" ls "$s3/copy" | grep -qx 'g1/' || fail "zmap ls on S3"
    # Credentials from the shared file (~/.aws/credentials), as netCDF users
    # keep them, with none in the environment.
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
        "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > credentials
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$tmp/credentials" \
        LD_PRELOAD="$bridge" ncdump -n ds "$s3/copy#mode=nczarr,s3" > s3-profile.cdl
    same "S3 with credentials from ~/.aws/credentials" src.cdl s3-profile.cdl
    echo "bridge S3 requests (one line per map: nccopy's write, ncdump's reads):"
    cat requests.log
else
    echo "S3 part skipped: ZMAP_TEST_S3_URL not set (scripts/test.sh starts SeaweedFS)"
fi

# 5. Python's netCDF4 module (python3-netcdf4: Debian's /usr/bin/python3,
# which loads libnetcdf with RTLD_LOCAL as a dependency of the extension
# module) reads the GNZ dataset.
python=
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import netCDF4' 2>/dev/null; then
        python=$candidate
        break
    fi
done
if [ -n "$python" ]; then
    with_bridge "$python" - "$(nczarr ds.gnz)" > python.txt <<'PY'
import sys, netCDF4
ds = netCDF4.Dataset(sys.argv[1])
print(ds.title, list(ds.variables), list(ds.groups))
print(ds["d"][:].tolist(), ds.groups["g1"]["gz"][:].tolist())
ds.close()
PY
    cat python.txt
    grep -q "bridge test \['f', 'd', 'i', 's', 'c'\] \['g1'\]" python.txt || fail "python netCDF4"
    grep -q '\[0.5, 1.5, 2.5, 3.5\] \[42, 43\]' python.txt || fail "python netCDF4 data"
    echo "ok: python netCDF4 reads GNZ through the bridge"
else
    echo "python part skipped: python3-netcdf4 not installed"
fi
# 6. ncgen and ncdump through the bridge under valgrind: no invalid access,
# no definite leak (netCDF 4.9.0's own leaks suppressed: libnetcdf.supp).
if command -v valgrind >/dev/null; then
    supp=$(dirname "$cdl")/libnetcdf.supp
    vg() { LD_PRELOAD="$bridge" valgrind -q --error-exitcode=99 --leak-check=full --show-possibly-lost=no \
        --errors-for-leak-kinds=definite --suppressions="$supp" "$@"; }
    vg ncgen -4 -o "$(nczarr vg.gnz)" "$cdl" || fail "valgrind: ncgen into GNZ"
    vg ncdump -n ds "$(nczarr vg.gnz)" > vg.cdl || fail "valgrind: ncdump of GNZ"
    same "valgrind: ncgen/ncdump GNZ" dir.cdl vg.cdl
    if [ -n "${ZMAP_TEST_S3_URL:-}" ]; then
        vg ncdump -n ds "$s3/copy#mode=nczarr,s3" > vg-s3.cdl || fail "valgrind: ncdump of S3"
        same "valgrind: ncdump S3" src.cdl vg-s3.cdl
    fi
else
    echo "valgrind part skipped: valgrind not installed"
fi
echo "netCDF bridge: all checks passed"
