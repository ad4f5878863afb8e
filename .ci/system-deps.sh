#!/usr/bin/env bash
# Installs the Debian packages the compose integration test needs (a PostgreSQL server and
# headless Chromium), only when they are absent, so a warm machine pays nothing.
# Idempotent; needs root (or sudo) for apt-get. Called by .ci/run.
set -euo pipefail

missing=()
# The test looks for the server binaries under /usr/lib/postgresql/*/bin.
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
# Fonts so the screenshot has readable text (chromium pulls in a minimal set only).
if ! dpkg -s fonts-liberation >/dev/null 2>&1; then
    missing+=(fonts-liberation)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "system-deps: postgresql, chromium and fonts already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done"
