#!/usr/bin/env bash
# gobuild.sh out name: builds cmd/<name> into out as the Dockerfile's build stage does (no cgo,
# -trimpath), so what runs locally and in the benchmarks is what the images hold, and the stack,
# the tests (internal/testenv) and scripts/check-deploy.sh share the compiled packages in Go's cache.
set -euo pipefail
out=$(realpath -m "$1")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CGO_ENABLED=0 exec go build -trimpath -o "$out" "./cmd/$2"
