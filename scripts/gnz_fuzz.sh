#!/usr/bin/env bash
# Fuzzes GNZ's open (parse + recovery + reading + committing on top of
# arbitrary bytes): fuzz/fuzz_targets/gnz_open.rs, libFuzzer through
# cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1 lets stable rustc
# take -Zsanitizer=address; see fuzz/README.md).
#
#   scripts/gnz_fuzz.sh [SECONDS] [LIBFUZZER-ARGS...]   (default 60 s)
#
# 1. Replays every input in fuzz/regressions/ and fuzz/seeds/ (any crash fails).
# 2. Fuzzes for SECONDS from fuzz/corpus/gnz_open (kept between runs, not
#    committed) and the seeds. A crash fails: the input is in
#    fuzz/artifacts/gnz_open/ and its panic message is shown; keep it by
#    copying it to fuzz/regressions/ (and report it).
# Closes with "gnz-fuzz: N passed, N failed" (inputs replayed + the fuzz run).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
seconds=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

fail() {
    echo "gnz-fuzz: $1"
    echo "gnz-fuzz: 0 passed, 1 failed"
    exit 1
}

cargo fuzz --version >/dev/null 2>&1 || fail "cargo-fuzz is not installed (scripts/setup.sh installs it)"
(cd fuzz && cargo fuzz build -O gnz_open) || fail "cargo fuzz build failed"
bin=fuzz/target/x86_64-unknown-linux-gnu/release/gnz_open
[ -x "$bin" ] || fail "no $bin after the build"

passed=0
failed=0
log=$(mktemp "${TMPDIR:-/tmp}/gnz-fuzz.XXXXXX")
trap 'rm -f "$log"' EXIT

# 1. Known inputs, one by one.
for input in fuzz/regressions/* fuzz/seeds/*; do
    [ -f "$input" ] || continue
    case "$input" in *.md) continue ;; esac
    if "$bin" "$input" >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL  $input"
        grep -A6 -m1 "panicked" "$log" || tail -20 "$log"
    fi
done
echo "gnz-fuzz: replayed $((passed + failed)) regression and seed inputs, $failed crashed"

# 2. Coverage-guided run.
mkdir -p fuzz/corpus/gnz_open fuzz/artifacts/gnz_open
before=$(ls fuzz/artifacts/gnz_open | wc -l)
t0=$SECONDS
"$bin" fuzz/corpus/gnz_open fuzz/seeds -dict=fuzz/gnz.dict -max_len=20000 \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -close_fd_mask=2 \
    -artifact_prefix=fuzz/artifacts/gnz_open/ -print_final_stats=1 "$@" >"$log" 2>&1
status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
corpus=$(ls fuzz/corpus/gnz_open | wc -l)
echo "gnz-fuzz: ${runs:-?} executions in $((SECONDS - t0)) s (${rate:-?}/s), corpus $corpus inputs"
if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL  the fuzz run (exit $status):"
    grep -E "SUMMARY|ERROR|deadly|Test unit written" "$log" | head -5
    new=$(ls -t fuzz/artifacts/gnz_open | head -$(( $(ls fuzz/artifacts/gnz_open | wc -l) - before )))
    for a in $new; do
        echo "--- fuzz/artifacts/gnz_open/$a (keep it: cp it to fuzz/regressions/)"
        "$bin" "fuzz/artifacts/gnz_open/$a" 2>&1 | grep -A8 -m1 "panicked\|ERROR: AddressSanitizer" || true
    done
fi
echo "gnz-fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
