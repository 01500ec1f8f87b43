#!/usr/bin/env bash
# Checks that the shared library exports every symbol of seed_symbols.txt,
# and that every function the header declares is exported too.
# Usage: check_exports.sh LIBRARY HEADER SYMBOL_LIST
set -euo pipefail
lib=$1 header=$2 list=$3
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort -u)
declared=$(grep -oE '^[a-z][a-z0-9_ *]*\b(nczm|nczmap|nclist)[a-z_]*\(' "$header" \
    | grep -oE '(nczm|nczmap|nclist)[a-z_]*' | sort -u)
missing=0
checked=0
while read -r name; do
    case $name in ''|'#'*) continue ;; esac
    checked=$((checked + 1))
    if ! grep -qx "$name" <<<"$exported"; then
        echo "not exported: $name"
        missing=$((missing + 1))
    fi
done <"$list"
for name in $declared; do
    checked=$((checked + 1))
    if ! grep -qx "$name" <<<"$exported"; then
        echo "declared in zmap.h but not exported: $name"
        missing=$((missing + 1))
    fi
done
echo "exports: $((checked - missing)) passed, $missing failed"
[ "$missing" -eq 0 ]
