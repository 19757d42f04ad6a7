#!/usr/bin/env bash
# Installs the tools make test drives besides the servers, all at once before the tests start:
# Debian's Chromium for the browser tests (headless; no browser download of its own, which this
# network would refuse), pg_auto_failover for make failover, docker-compose for
# scripts/check-deploy.sh.
set -euo pipefail
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v pg_autoctl >/dev/null || missing+=(postgresql-15-auto-failover pg-auto-failover-cli)
command -v docker-compose >/dev/null || missing+=(docker-compose)
exec "$(dirname "$0")/apt-install.sh" "${missing[@]}"
