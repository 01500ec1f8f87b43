#!/usr/bin/env bash
# GNZ create+commit of this tree against an older commit, on this machine,
# in one session: both libzmaps are built (Release), bench/gnz_against.c is
# compiled against each one's own header, and the two programs run in
# alternating processes; prints each side's median and the ratio.
#
#   bash scripts/bench_against.sh REV [PROCESSES]
#
# REV: any commit (for example the one an issue was filed on). PROCESSES:
# pairs of runs (default 20), each process 21 rounds of 10,000 × 1 KiB.
# Environment: ZMAP_AGAINST_DIR, where the datasets are made (default
# /dev/shm, else /tmp). Absolute rates move with the machine's load; the
# ratio, taken pair by pair, much less.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 REV [PROCESSES]" >&2
    exit 2
fi
rev=$(git rev-parse --verify "$1^{commit}")
pairs=${2:-20}
dir=${ZMAP_AGAINST_DIR:-/dev/shm}
[ -d "$dir" ] || dir=/tmp

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Builds the libzmap of the source tree $1 into $2 (a library directory
# holding the shared library under its SONAME) and the program $3 against
# that tree's header.
build() {
    local src=$1 libdir=$2 program=$3 package=()
    # The workspace (libzmap/) or, before it, the crate at the root.
    if [ -f "$src/libzmap/Cargo.toml" ]; then package=(-p zmap); fi
    (cd "$src" && CARGO_TARGET_DIR="$work/target-$(basename "$libdir")" \
        cargo build --quiet --release --lib "${package[@]}")
    local so="$work/target-$(basename "$libdir")/release/libzmap.so" soname
    soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
    mkdir -p "$libdir"
    cp "$so" "$libdir/${soname:-libzmap.so}"
    ln -sf "${soname:-libzmap.so}" "$libdir/libzmap.so"
    cc -O2 -I "$src/include" bench/gnz_against.c -L "$libdir" -lzmap \
        -Wl,-rpath,"$libdir" -o "$program"
}

echo "building $rev (older) and this tree (newer)..." >&2
mkdir -p "$work/old"
git archive "$rev" | tar -x -C "$work/old"
build "$work/old" "$work/lib-old" "$work/old-bench"
build "$PWD" "$work/lib-new" "$work/new-bench"

echo "running $pairs pairs of processes in $dir..." >&2
for _ in $(seq "$pairs"); do
    echo "old $("$work/old-bench" "$dir")"
    echo "new $("$work/new-bench" "$dir")"
done >"$work/results"

python3 - "$work/results" "$rev" "$(git rev-parse --short HEAD)" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
side = {k: [list(map(float, r[1:])) for r in rows if r[0] == k] for k in ("old", "new")}
names = {"old": sys.argv[2][:7], "new": sys.argv[3] + " (this tree)"}
print("GNZ create+commit, 10,000 x 1 KiB, median of 21 rounds per process,")
print(f"{len(side['old'])} processes of each, alternating:")
for k in ("old", "new"):
    create, close, total, rate = (statistics.median(c) for c in zip(*side[k]))
    print(f"  {names[k]:<24} {rate / 1e6:.2f}M obj/s  (create {create:.2f} ms, close {close:.2f} ms)")
ratios = [n[3] / o[3] for o, n in zip(side["old"], side["new"])]
print(f"  new / old: {statistics.median(ratios):.2f}x (median of per-pair ratios; "
      f"{min(ratios):.2f}x-{max(ratios):.2f}x)")
PY
