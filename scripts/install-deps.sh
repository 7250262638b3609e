#!/usr/bin/env bash
# Installs the Debian 12 packages Bastion needs to build, run and test. Idempotent: it asks
# apt-get only for packages that are not installed yet, so a second run does nothing.
# Usage: scripts/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

# Build toolchain and libraries.
build_pkgs=(
    build-essential cmake pkg-config git ca-certificates openssl
    libssl-dev libnghttp2-dev libevent-dev libyaml-dev libjansson-dev libjwt-dev
    libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
    check
)
# Real peers used by the tests: gRPC and HTTP/2 clients, the protobuf runtime.
test_pkgs=(
    python3 python3-grpcio python3-grpc-tools python3-protobuf
    python3-h2 python3-hyperframe python3-hpack python3-jwt python3-cryptography
    nghttp2-client procps
)

wanted=("${build_pkgs[@]}" "${test_pkgs[@]}")
missing=()
for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# nghttp2 before 1.52.0-1+deb12u3 has an assertion reachable by peers (CVE-2026-27135);
# installing libnghttp2-dev pulls the fixed runtime, so also upgrade an old runtime here.
if dpkg --compare-versions "$(dpkg-query -W -f='${Version}' libnghttp2-14 2>/dev/null || echo 0)" \
    lt 1.52.0-1+deb12u3; then
    missing+=(libnghttp2-14)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#wanted[@]} packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
