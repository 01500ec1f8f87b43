#!/usr/bin/env bash
# Checks that the shared library exports every symbol of seed_symbols.txt and
# every function the header declares, each twice (README: "Linking libzmap
# together with libnetcdf"): under its link name zmap_<name>, which zmap.h
# maps the name onto, and as the hidden version <name>@ZMAP_1 of a version
# node with index >= 3 (so that unversioned references never bind to it).
# Usage: check_exports.sh LIBRARY HEADER SYMBOL_LIST
set -euo pipefail
lib=$1 header=$2 list=$3
# "T name" or "T name@VERSION" (hidden) / "T name@@VERSION" (default).
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort -u)
declared=$(grep -oE '^[a-z][a-z0-9_ *]*\b(nczm|nczmap|nclist)[a-z_]*\(' "$header" \
    | grep -oE '(nczm|nczmap|nclist)[a-z_]*' | sort -u)
# The version node ZMAP_1 and its index (readelf -V: "Index: 3 ... Name: ZMAP_1").
index=$(readelf -V "$lib" | sed -nE 's/.*Index: ([0-9]+).*Name: ZMAP_1$/\1/p')
missing=0
checked=0
check() { # name
    local name=$1
    checked=$((checked + 1))
    if ! grep -qx "zmap_$name" <<<"$exported"; then
        echo "not exported under its link name: zmap_$name"
        missing=$((missing + 1))
    elif ! grep -qx "$name@ZMAP_1" <<<"$exported"; then
        echo "not exported as the hidden version $name@ZMAP_1: $name"
        missing=$((missing + 1))
    elif grep -qxE "$name(@@.*)?" <<<"$exported"; then
        echo "exported unversioned or as a default version: $name"
        missing=$((missing + 1))
    elif ! grep -qx "#define $name zmap_$name" "$header"; then
        echo "zmap.h does not map $name onto zmap_$name"
        missing=$((missing + 1))
    fi
}
checked=$((checked + 1))
if [ -z "$index" ] || [ "$index" -lt 3 ]; then
    echo "version node ZMAP_1 missing or with index < 3: '${index}'"
    missing=$((missing + 1))
fi
# Nothing else: a dependency's own C functions are not libzmap's ABI.
while read -r name; do
    checked=$((checked + 1))
    echo "exported but not libzmap's: $name"
    missing=$((missing + 1))
done < <(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' |
    grep -vE '^zmap_(nczm|nczmap|nclist)[a-z_]*$|^(nczm|nczmap|nclist)[a-z_]*@ZMAP_1$' || true)
while read -r name; do
    case $name in ''|'#'*) continue ;; esac
    check "$name"
done <"$list"
for name in $declared; do
    check "$name"
done
echo "exports: $((checked - missing)) passed, $missing failed"
[ "$missing" -eq 0 ]
