#!/usr/bin/env bash
# Fuzzes the GNZ backend with libFuzzer through cargo-fuzz on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets stable rustc take -Zsanitizer=address;
# see fuzz/README.md). Two targets:
#   gnz_open  arbitrary bytes as a GNZ file: parse + recovery, reading every
#             object, committing and compacting on top of it;
#   gnz_ops   sequences of writes/truncates/removes/commits/compactions/
#             reopens/snapshots against a model.
#
#   scripts/gnz_fuzz.sh [SECONDS] [TARGET] [LIBFUZZER-ARGS...]
#       SECONDS (default 60) is split evenly between the targets;
#       TARGET: gnz_open, gnz_ops or all (default).
#
# 1. Replays every input in fuzz/regressions/<target>/ and fuzz/seeds/ (for
#    gnz_open): any crash fails.
# 2. Fuzzes each target: runs of 300 s or more per target from and into
#    fuzz/corpus/<target> (kept between runs, not committed), shorter ones
#    from the seeds alone. A crash fails: the input is in fuzz/artifacts/<target>/ and
#    its panic message is shown; keep it by copying it to
#    fuzz/regressions/<target>/ (and report it).
# Closes with "gnz-fuzz: N passed, N failed" (inputs replayed + fuzz runs).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
seconds=${1:-60}
which=${2:-all}
shift 2 2>/dev/null || shift $#
case "$which" in
all) targets=(gnz_open gnz_ops) ;;
gnz_open | gnz_ops) targets=("$which") ;;
*) echo "usage: $0 [SECONDS] [gnz_open|gnz_ops|all] [LIBFUZZER-ARGS...]" >&2; exit 2 ;;
esac
each=$((seconds / ${#targets[@]}))
[ "$each" -ge 1 ] || each=1
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

fail() {
    echo "gnz-fuzz: $1"
    echo "gnz-fuzz: 0 passed, 1 failed"
    exit 1
}

cargo fuzz --version >/dev/null 2>&1 || fail "cargo-fuzz is not installed (scripts/setup.sh installs it)"
(cd fuzz && cargo fuzz build -O) || fail "cargo fuzz build failed"
bindir=fuzz/target/x86_64-unknown-linux-gnu/release

passed=0
failed=0
log=$(mktemp "${TMPDIR:-/tmp}/gnz-fuzz.XXXXXX")
scratch=("$log")
trap 'rm -rf "${scratch[@]}"' EXIT

for target in "${targets[@]}"; do
    bin=$bindir/$target
    [ -x "$bin" ] || fail "no $bin after the build"
    # 1. Known inputs, one by one.
    known=(fuzz/regressions/"$target"/*)
    if [ "$target" = gnz_open ]; then known+=(fuzz/seeds/*); fi
    n=0
    bad=0
    for input in "${known[@]}"; do
        [ -f "$input" ] || continue
        n=$((n + 1))
        if "$bin" "$input" >"$log" 2>&1; then
            passed=$((passed + 1))
        else
            bad=$((bad + 1))
            echo "FAIL  $target $input"
            grep -A6 -m1 "panicked" "$log" || tail -20 "$log"
        fi
    done
    failed=$((failed + bad))
    echo "gnz-fuzz: $target: replayed $n known inputs, $bad crashed"

    # 2. Coverage-guided run.
    case "$target" in
    gnz_open) opts=(-dict=fuzz/gnz.dict -max_len=20000 fuzz/seeds) ;;
    gnz_ops) opts=(-max_len=600 -len_control=0) ;;
    esac
    # Short (smoke) runs start afresh, so that their time does not grow with
    # a corpus that libFuzzer would first replay in full; runs of 300 s or
    # more use and grow fuzz/corpus/<target>.
    if [ "$each" -ge 300 ]; then
        corpus=fuzz/corpus/$target
    else
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/gnz-fuzz-corpus.XXXXXX")
        scratch+=("$corpus")
    fi
    artifacts=fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    before=$(ls "$artifacts" | wc -l)
    t0=$SECONDS
    "$bin" "$corpus" "${opts[@]}" -max_total_time="$each" -timeout=20 -rss_limit_mb=3072 \
        -close_fd_mask=2 -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "gnz-fuzz: $target: ${runs:-?} executions in $((SECONDS - t0)) s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l) inputs"
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL  the $target fuzz run (exit $status):"
        grep -E "SUMMARY|ERROR|deadly|Test unit written" "$log" | head -5
        added=$(($(ls "$artifacts" | wc -l) - before))
        if [ "$added" -gt 0 ]; then
            for a in $(ls -t "$artifacts" | head -"$added"); do
                echo "--- $artifacts/$a (keep it: cp it to fuzz/regressions/$target/)"
                "$bin" "$artifacts/$a" 2>&1 | grep -A8 -m1 "panicked\|ERROR: AddressSanitizer" || true
            done
        fi
    fi
done
echo "gnz-fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
