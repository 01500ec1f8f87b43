#!/usr/bin/env bash
# libzmap_netcdf.so exports exactly netCDF 4.9's zmap functions, unversioned
# (as libnetcdf.so.19 defines them), and no zmap_* name of libzmap's C API:
#   check_bridge_exports.sh LIBRARY
set -euo pipefail
expected="nczmap_close nczmap_create nczmap_exists nczmap_features nczmap_len nczmap_open nczmap_read nczmap_search nczmap_truncate nczmap_write"
actual=$(nm -D --defined-only "$1" | awk '{print $3}' | sort | tr '\n' ' ' | sed 's/ $//')
echo "exported: $actual"
if [ "$actual" != "$expected" ]; then
    echo "FAIL: expected exactly: $expected" >&2
    exit 1
fi
if nm -D --defined-only "$1" | grep -q '@'; then
    echo "FAIL: versioned exports" >&2
    exit 1
fi
echo "ok: exactly netCDF 4.9's zmap functions, unversioned"
