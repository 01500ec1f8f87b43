#!/usr/bin/env bash
# The quickstart, from a fresh clone: installs what is missing, builds
# libzmap (Release) and examples/quickstart.c with CMake in build/, and runs
# it. Its datasets land in build/quickstart-data.
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
cmake --build "$build_dir" -j "$jobs" --target quickstart
echo
"$build_dir/quickstart" "$build_dir/quickstart-data"
