#!/usr/bin/env bash
# Installs the tools the test suite drives besides the servers: Debian's Chromium for the browser
# tests (headless; no browser download of its own, which this network would refuse).
set -euo pipefail
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
((${#missing[@]} == 0)) && exit 0
echo "installing ${missing[*]} from Debian packages" >&2
sudo_if_needed() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
sudo_if_needed apt-get update -qq
sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
