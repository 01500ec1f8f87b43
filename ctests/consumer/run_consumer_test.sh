#!/usr/bin/env bash
# The `consumer` ctest: install the build tree into a temporary prefix, then
# use it as a user would, through find_package(zmap) and through pkg-config.
#
# usage: run_consumer_test.sh <zmap build dir> <scratch dir> <version> <soname>
#                              <real name> <libdir> <includedir>
# (<libdir>, <includedir>: relative to the install prefix, e.g. lib, include)
# environment: CMAKE_COMMAND (default: cmake), CC (default: cc);
#   ZMAP_TOOL_BINDIR, ZMAP_TOOL_MANDIR, ZMAP_TOOL_DATAROOTDIR (relative to the
#   prefix; set when the build has the zmap tool): its installed files are checked
set -euo pipefail

build_dir=$1
scratch=$2
version=$3
soname=$4
realname=$5
libdir_rel=$6
includedir_rel=$7
cmake=${CMAKE_COMMAND:-cmake}
cc=${CC:-cc}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
    echo "consumer test: FAILED: $*" >&2
    exit 1
}

rm -rf "$scratch"
mkdir -p "$scratch"
prefix=$scratch/prefix

echo "== install into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix"

echo "== installed files"
libdir=$prefix/$libdir_rel
[ -f "$libdir/$realname" ] && [ ! -L "$libdir/$realname" ] || fail "$libdir/$realname is not a regular file"
[ "$(readlink "$libdir/$soname")" = "$realname" ] || fail "$libdir/$soname does not link to $realname"
[ "$(readlink "$libdir/libzmap.so")" = "$soname" ] || fail "$libdir/libzmap.so does not link to $soname"
for file in "$libdir_rel/libzmap.a" "$includedir_rel/zmap.h" \
    "$libdir_rel/cmake/zmap/zmapConfig.cmake" "$libdir_rel/cmake/zmap/zmapConfigVersion.cmake" \
    "$libdir_rel/pkgconfig/zmap.pc"; do
    [ -f "$prefix/$file" ] || fail "$file is not installed"
done
cmp -s "$prefix/$includedir_rel/zmap.h" "$here/../../include/zmap.h" || fail "installed zmap.h differs from include/zmap.h"
if command -v readelf >/dev/null 2>&1; then
    # (Outputs are captured first: `grep -q` closing a pipe early would make
    # the writer fail under pipefail.)
    dynamic=$(readelf -d "$libdir/$realname")
    grep -q "Library soname: \[$soname\]" <<<"$dynamic" || fail "$realname does not have SONAME $soname"
fi

if [ -n "${ZMAP_TOOL_BINDIR:-}" ]; then
    echo "== the zmap tool: program, man pages, completions"
    tool=$prefix/$ZMAP_TOOL_BINDIR/zmap
    [ -x "$tool" ] || fail "$ZMAP_TOOL_BINDIR/zmap is not installed"
    [ "$("$tool" --version)" = "zmap $version" ] || fail "zmap --version is not 'zmap $version'"
    "$tool" --help | grep -q '^Examples:' || fail "zmap --help shows no examples"
    man1=$prefix/$ZMAP_TOOL_MANDIR/man1
    share=$prefix/$ZMAP_TOOL_DATAROOTDIR
    for file in "$man1/zmap.1" "$man1/zmap-cp.1" "$man1/zmap-verify.1" \
        "$share/bash-completion/completions/zmap" "$share/zsh/site-functions/_zmap" \
        "$share/fish/vendor_completions.d/zmap.fish"; do
        [ -f "$file" ] || fail "${file#"$prefix"/} is not installed"
    done
    if command -v man >/dev/null 2>&1; then
        page=$(MANPAGER=cat MANWIDTH=100 man -l "$man1/zmap.1" 2>&1) || fail "man -l zmap.1 failed: $page"
        grep -q 'EXAMPLES' <<<"$page" && grep -q 'zmap cp ds.zarr ds.gnz' <<<"$page" ||
            fail "man -l zmap.1 shows no examples: $page"
        for page_file in "$man1"/zmap-*.1; do
            MANPAGER=cat man -l "$page_file" >/dev/null 2>&1 || fail "man -l $page_file failed"
        done
    else
        echo "(man is not installed: the pages are not rendered)"
    fi
    bash -n "$share/bash-completion/completions/zmap" || fail "bash -n rejects the bash completion"
    # shellcheck disable=SC2016 # expanded by the inner bash
    registered=$(bash -c 'source "$1" && complete -p zmap' _ "$share/bash-completion/completions/zmap") ||
        fail "the bash completion registers nothing for zmap"
    echo "bash: $registered"
    if command -v zsh >/dev/null 2>&1; then
        zsh -n "$share/zsh/site-functions/_zmap" || fail "zsh -n rejects _zmap"
    fi
    if command -v fish >/dev/null 2>&1; then
        fish --no-execute "$share/fish/vendor_completions.d/zmap.fish" || fail "fish rejects zmap.fish"
    fi
fi

echo "== find_package(zmap): configure, build, run"
"$cmake" -S "$here" -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_C_COMPILER=$cc"
"$cmake" --build "$scratch/build"
for program in consumer_shared consumer_static; do
    output=$("$scratch/build/$program")
    echo "$program: $output"
    case $output in
        *"libzmap $version:"*) ;;
        *) fail "$program did not report version $version" ;;
    esac
done
if command -v ldd >/dev/null 2>&1; then
    loaded=$(ldd "$scratch/build/consumer_shared")
    grep -qF "$soname => $libdir/$soname" <<<"$loaded" || fail "consumer_shared does not load $libdir/$soname"
    loaded=$(ldd "$scratch/build/consumer_static")
    if grep -q libzmap <<<"$loaded"; then
        fail "consumer_static depends on the shared libzmap"
    fi
fi

echo "== pkg-config"
if ! command -v pkg-config >/dev/null 2>&1; then
    fail "pkg-config is not installed"
fi
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion zmap)" = "$version" ] || fail "pkg-config --modversion zmap is not $version"
flags=$(pkg-config --cflags --libs zmap)
echo "pkg-config --cflags --libs zmap: $flags"
# shellcheck disable=SC2086 # the flags are words
"$cc" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$scratch/consumer_pkgconfig" \
    $flags "-Wl,-rpath,$libdir"
output=$("$scratch/consumer_pkgconfig")
echo "consumer_pkgconfig: $output"
case $output in
    *"libzmap $version:"*) ;;
    *) fail "consumer_pkgconfig did not report version $version" ;;
esac
# Libs.private lists what the static library needs besides libzmap itself.
static_libs=$(pkg-config --libs-only-l --static zmap)
private_libs=
for word in $static_libs; do
    [ "$word" = -lzmap ] || private_libs="$private_libs $word"
done
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$scratch/consumer_pkgconfig_static" \
    $(pkg-config --cflags zmap) "$libdir/libzmap.a" $private_libs
"$scratch/consumer_pkgconfig_static" >/dev/null || fail "the static pkg-config program failed"

rm -rf "$scratch"
echo "consumer test: ok"
