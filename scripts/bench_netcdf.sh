#!/usr/bin/env bash
# The netCDF bridge's benchmark (BENCHMARKS.md, "netCDF through the bridge"):
# nccopy of a netCDF-4 file into NCZarr as a directory (netCDF alone), as a
# GNZ file and on S3 (SeaweedFS on 127.0.0.1; both through
# libzmap_netcdf.so): time, files, S3 requests; then `ncdump -h` latency.
# Not run by scripts/test.sh.
#
#   bash scripts/bench_netcdf.sh [SIZE_MIB]      (default 1024: about 1 GB)
#
# Environment: ZMAP_NETCDF_BRIDGE (a built libzmap_netcdf.so; default: a
# release build by cargo), ZMAP_BENCH_DIR (default /tmp), ZMAP_BENCH_DUMPS
# (ncdump -h runs, default 5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
size_mib=${1:-1024}
dumps=${ZMAP_BENCH_DUMPS:-5}
python=/usr/bin/python3
"$python" -c 'import netCDF4, numpy' || { echo "needs python3-netcdf4 (scripts/setup.sh)" >&2; exit 1; }

bridge=${ZMAP_NETCDF_BRIDGE:-}
if [ -z "$bridge" ]; then
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build --release -p zmap-netcdf --lib >&2
    cargo build --release -p zmap-cli --bin zmap >&2
    bridge=$PWD/target/release/libzmap_netcdf.so
fi
zmap=${ZMAP_CLI:-$PWD/target/release/zmap}
[ -x "$zmap" ] || zmap=$PWD/target/debug/zmap

work=$(mktemp -d "${ZMAP_BENCH_DIR:-/tmp}/zmap-bench-netcdf-XXXXXX")
source scripts/seaweedfs.sh
s3_start >&2
trap 's3_stop; rm -rf "$work"' EXIT
export ZMAP_NETCDF_REQUEST_LOG=$work/requests.log

# A netCDF-4 file of SIZE_MIB MiB: float t(n, 1024, 1024), chunks of one 4 MiB plane.
planes=$(( size_mib / 4 ))
"$python" - "$work/src.nc" "$planes" <<'PY'
import sys, numpy as np, netCDF4
path, n = sys.argv[1], int(sys.argv[2])
ds = netCDF4.Dataset(path, "w", format="NETCDF4")
ds.createDimension("n", n); ds.createDimension("y", 1024); ds.createDimension("x", 1024)
v = ds.createVariable("t", "f4", ("n", "y", "x"), chunksizes=(1, 1024, 1024))
v.units = "K"
plane = np.arange(1024 * 1024, dtype="f4").reshape(1024, 1024)
for i in range(n):
    v[i] = plane + i
ds.close()
PY
src_bytes=$(stat -c %s "$work/src.nc")

seconds() { # seconds CMD...: wall time of CMD (its output discarded)
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    printf '%.3f\n' "$(echo "$t1 - $t0" | bc)"
}
sync
t_dir=$(seconds nccopy "$work/src.nc" "file://$work/dir.file#mode=nczarr,file")
files_dir=$(find "$work/dir.file" -type f | wc -l)
sync
t_gnz=$(seconds env LD_PRELOAD="$bridge" nccopy "$work/src.nc" "file://$work/ds.gnz#mode=nczarr,file")
files_gnz=$(find "$work/ds.gnz" -type f | wc -l)
s3="$ZMAP_TEST_S3_URL/bench-netcdf"
t_s3=$(seconds env LD_PRELOAD="$bridge" nccopy "$work/src.nc" "$s3#mode=nczarr,s3")
s3_write=$(tail -1 "$work/requests.log")
objects_s3=$("$zmap" ls -R "$s3" 2>/dev/null | grep -vc '/$' || true)

# Same header everywhere (and the data checked on the last plane).
ncdump -h "$work/src.nc" | sed 1d > "$work/h.src"
env LD_PRELOAD="$bridge" ncdump -h "$s3#mode=nczarr,s3" | sed 1d > "$work/h.s3"
env LD_PRELOAD="$bridge" ncdump -h "file://$work/ds.gnz#mode=nczarr,file" | sed 1d > "$work/h.gnz"
cmp -s "$work/h.src" "$work/h.s3" && cmp -s "$work/h.src" "$work/h.gnz" || { echo "headers differ" >&2; exit 1; }
env LD_PRELOAD="$bridge" "$python" - "$work/src.nc" "file://$work/ds.gnz#mode=nczarr,file" "$s3#mode=nczarr,s3" <<'PY'
import sys, numpy as np, netCDF4
ref = netCDF4.Dataset(sys.argv[1])["t"]
last = ref.shape[0] - 1
for url in sys.argv[2:]:
    got = netCDF4.Dataset(url)["t"]
    assert np.array_equal(got[last], ref[last]) and np.array_equal(got[0], ref[0]), url
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$work/requests.log"
dump_s3=$(for _ in $(seq "$dumps"); do seconds env LD_PRELOAD="$bridge" ncdump -h "$s3#mode=nczarr,s3"; done | median)
dump_s3_requests=$(tail -1 "$work/requests.log" | sed 's/.* requests=\([0-9]*\).*/\1/')
dump_dir=$(for _ in $(seq "$dumps"); do seconds ncdump -h "file://$work/dir.file#mode=nczarr,file"; done | median)
dump_gnz=$(for _ in $(seq "$dumps"); do seconds env LD_PRELOAD="$bridge" ncdump -h "file://$work/ds.gnz#mode=nczarr,file"; done | median)

mib=$(echo "scale=1; $src_bytes / 1048576" | bc)
echo
echo "nccopy of a ${mib} MiB netCDF-4 file (float t($planes,1024,1024), 4 MiB chunks), $(date -u +%F), $(nproc) cores (shared)"
echo
echo "| target | time (s) | MiB/s | ratio to directory | files | S3 requests |"
echo "|---|---|---|---|---|---|"
rate() { echo "scale=1; $mib / $1" | bc; }
ratio() { echo "scale=2; $1 / $t_dir" | bc; }
echo "| NCZarr directory (netCDF alone) | $t_dir | $(rate "$t_dir") | 1.00 | $files_dir | - |"
echo "| GNZ file (bridge) | $t_gnz | $(rate "$t_gnz") | $(ratio "$t_gnz") | $files_gnz | - |"
echo "| S3, SeaweedFS on loopback (bridge) | $t_s3 | $(rate "$t_s3") | $(ratio "$t_s3") | $objects_s3 objects | $(echo "$s3_write" | sed 's/^[^ ]* //') |"
echo
echo "ncdump -h (median of $dumps runs, s): directory $dump_dir, GNZ $dump_gnz, S3 $dump_s3 ($dump_s3_requests requests)"
