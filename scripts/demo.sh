#!/usr/bin/env bash
# The quickstart, from a fresh clone: installs what is missing, builds
# libzmap (Release), examples/quickstart.c and the zmap tool with CMake in
# build/, and runs the quickstart. Its datasets land in build/quickstart-data;
# then the zmap tool lists and dumps the FILE dataset the quickstart wrote,
# packs it into one GNZ file (build/quickstart-data/packed.gnz) and verifies it.
#
# Environment: ZMAP_BUILD_DIR (default: build), ZMAP_JOBS (default: 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
build_dir=${ZMAP_BUILD_DIR:-build}
jobs=${ZMAP_JOBS:-2}

bash scripts/setup.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" -j "$jobs" --target quickstart zmap_tool
echo
data=$build_dir/quickstart-data
"$build_dir/quickstart" "$data"

zmap=$build_dir/bin/zmap
run() {
    echo
    echo "\$ zmap ${*}"
    "$zmap" "$@"
}
run ls -lR "$data/quickstart.nzf"
run tree "$data/quickstart.nzf"
run cp "$data/quickstart.nzf" "$data/packed.gnz"
run verify "$data/packed.gnz"
run info "$data/packed.gnz"
