#!/usr/bin/env bash
# apt-install.sh package...: installs Debian packages (no recommends), as root or through sudo.
# The one place the scripts install from apt. It waits for apt's lock rather than failing when
# another install is under way.
set -euo pipefail
(($# > 0)) || exit 0
as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
echo "installing $* from Debian packages" >&2
apt_get update -qq
apt_get install -y -qq --no-install-recommends "$@" >/dev/null
