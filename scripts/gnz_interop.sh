#!/usr/bin/env bash
# GNZ interop in both directions (tests/gnz_interop/run.py):
#   A. libzmap writes (C API via ctypes), a numpy.memmap reader written from
#      Part 1 of the format reads every byte;
#   B. files in the original Python writer's layout open through libzmap with
#      the right keys, lengths and bytes, and stay readable (dtype, shape,
#      values, metadata) after libzmap changes one object and commits.
# Closes with "gnz-interop: N passed, N failed"; exit status 1 if any failed.
#
# Python: the pinned venv that scripts/setup.sh makes (.venv-zarr2, numpy
# 2.2.6), else .venv-zarr3, else python3 if it has numpy.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

fail() {
    echo "gnz-interop: $1"
    echo "gnz-interop: 0 passed, 1 failed"
    exit 1
}

py=
for candidate in "$repo/.venv-zarr2/bin/python" "$repo/.venv-zarr3/bin/python" python3; do
    if "$candidate" -c "import numpy" >/dev/null 2>&1; then
        py=$candidate
        break
    fi
done
[ -n "$py" ] || fail "no Python with numpy (run scripts/setup.sh)"

cargo build --quiet -p zmap --lib || fail "cargo build failed"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
    echo "$repo/target")

W=$(mktemp -d "${TMPDIR:-/tmp}/zmap-gnz-interop.XXXXXX")
trap 'rm -rf "$W"' EXIT
# A private copy: a build running meanwhile cannot swap it under the test.
cp "$target_dir/debug/libzmap.so" "$W/libzmap.so" || fail "no libzmap.so in $target_dir/debug"

"$py" "$repo/tests/gnz_interop/run.py" "$W/libzmap.so" "$W/data"
