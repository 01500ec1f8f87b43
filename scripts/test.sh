#!/usr/bin/env bash
# Runs every check of the project and fails if any fails:
#   setup, cargo fmt --check, cargo clippy (-D warnings), cargo test (with the
#   nc4 feature when libnetcdf is installed),
#   CMake configure + build (Release, in build/), ctest (C tests on every
#   backend, their valgrind copies, header checks, the install/consumer test).
# Every step runs even after a failure (except ctest without a build), and a
# summary with timings closes the output. Exit status: 0 only if all passed.
#
# Environment: ZMAP_BUILD_DIR (default: build), ZMAP_JOBS (default: 2).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

build_dir=${ZMAP_BUILD_DIR:-build}
jobs=${ZMAP_JOBS:-2}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_BUILD_JOBS=$jobs

summary=()
failed=0
started=$SECONDS

# step NAME COMMAND...: runs a step, records PASS/FAIL and its duration.
step() {
    local name=$1
    shift
    local t0=$SECONDS
    echo
    echo "=== $name: $*"
    if "$@"; then
        summary+=("$(printf 'PASS  %-22s %4ds' "$name" $((SECONDS - t0)))")
        return 0
    else
        local status=$?
        summary+=("$(printf 'FAIL  %-22s %4ds  (exit %d)' "$name" $((SECONDS - t0)) "$status")")
        failed=$((failed + 1))
        return "$status"
    fi
}

skip() {
    summary+=("$(printf 'SKIP  %-22s        (%s)' "$1" "$2")")
}

run_ctest() (
    cd "$build_dir" && ctest --output-on-failure -j "$jobs"
)

if ! step setup bash scripts/setup.sh; then
    echo "setup failed: nothing else can run" >&2
    printf '%s\n' "${summary[@]}"
    exit 1
fi
# The S3 tests (Rust and C) use a private SeaweedFS on 127.0.0.1, stopped on exit.
source scripts/seaweedfs.sh && step seaweedfs s3_start && trap s3_stop EXIT
# NCZM_NC4 is built and tested wherever libnetcdf is (setup installs it).
nc4_features=()
nc4_cmake=()
if pkg-config --exists netcdf 2>/dev/null; then
    nc4_features=(--features nc4)
    nc4_cmake=(-DZMAP_WITH_NC4=ON)
fi
step "cargo fmt" cargo fmt --check
step "cargo clippy" cargo clippy --workspace --all-targets "${nc4_features[@]}" -- -D warnings
step "cargo test" cargo test --workspace "${nc4_features[@]}"
step interop bash scripts/interop.sh
step "gnz interop" bash scripts/gnz_interop.sh
step "gnz fuzz" bash scripts/gnz_fuzz.sh 60
built=0
# The C tests link the library cargo test just built (target/, dev profile):
# a second, release build of every dependency would double the run's time.
# Users and scripts/bench.sh build the release library (CMake's default).
if step "cmake configure" cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DZMAP_CARGO_PROFILE=dev "-DZMAP_CARGO_TARGET_DIR=$PWD/target" "${nc4_cmake[@]}"; then
    step "cmake build" cmake --build "$build_dir" -j "$jobs" && built=1
else
    skip "cmake build" "configure failed"
fi
if [ "$built" -eq 1 ]; then
    step ctest run_ctest
else
    skip ctest "no build"
fi

echo
echo "=== summary ($((SECONDS - started))s)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "scripts/test.sh: FAILED ($failed step(s))"
    exit 1
fi
echo "scripts/test.sh: all checks passed"
