#!/usr/bin/env bash
# Installs what the build, the local stack, the tests and the benchmarks
# need, skipping whatever is already there: Debian's OpenSSL headers (for
# librdkafka), Debian's ClickHouse, the tansu broker (built from
# crates.io, about 10 minutes the first time), Debian's ZooKeeper (for the
# local ClickHouse cluster), and the Python packages of
# tests/requirements.txt. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."

TANSU_VERSION=0.6.0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        $SUDO apt-get update -q
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
}

# librdkafka is built with OpenSSL (TLS and SASL/SCRAM to secured clusters).
if ! dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
    echo "install: OpenSSL headers and pkg-config (Debian packages), for librdkafka"
    apt_install libssl-dev pkg-config
fi

if ! command -v clickhouse-server >/dev/null || ! command -v clickhouse-client >/dev/null; then
    echo "install: ClickHouse server (Debian package)"
    apt_install clickhouse-server clickhouse-client
fi

# ZooKeeper (Debian's package, its server run by deploy/cluster/cluster.sh,
# never as a system service) for the local ClickHouse cluster.
if [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "install: ZooKeeper (Debian package), for the local ClickHouse cluster"
    apt_install zookeeper
fi

if [ "$(tansu --version 2>/dev/null)" != "tansu $TANSU_VERSION" ]; then
    echo "install: tansu $TANSU_VERSION (cargo install; about 10 minutes on 2 cores)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore
fi

if ! command -v chromium >/dev/null; then
    echo "install: Chromium (Debian package), for the dashboard browser test"
    apt_install chromium
fi

if ! python3 -c 'import pytest, jsonschema, rfc3339_validator, chdb, confluent_kafka, openapi_spec_validator, schemathesis, kubernetes_validate' 2>/dev/null; then
    echo "install: Python packages of tests/requirements.txt"
    python3 -m pip install -q -r tests/requirements.txt
fi

# docker-compose (PyPI), which checks deploy/compose/compose.yaml, in a
# virtualenv of its own: it pins jsonschema < 4 and PyYAML < 6, which would
# break the test packages above, and PyYAML 5.4 builds on Python 3.11 only
# with Cython < 3 and without build isolation.
COMPOSE_VENV=.local/validators/compose
if ! "$COMPOSE_VENV/bin/docker-compose" version >/dev/null 2>&1; then
    echo "install: docker-compose 1.29 (PyPI, own virtualenv), to check the Compose file"
    rm -rf "$COMPOSE_VENV"
    python3 -m venv "$COMPOSE_VENV"
    "$COMPOSE_VENV/bin/pip" install -q "cython<3" wheel setuptools
    "$COMPOSE_VENV/bin/pip" install -q --no-build-isolation "pyyaml==5.4.1"
    "$COMPOSE_VENV/bin/pip" install -q "docker-compose==1.29.2"
fi
