#!/usr/bin/env bash
# Re-vendors the /docs page's assets: Swagger UI (swagger-ui-dist, Apache-2.0) from the npm
# registry into internal/apidocs/assets, so the binaries serve the page with no network.
# The files are stored gzipped (-n: no name or time, so the bytes depend on the input only)
# and served as they are to browsers, which all accept gzip.
#
#   scripts/update-docs-assets.sh            re-fetch the version in assets/VERSION
#   scripts/update-docs-assets.sh 5.36.0     move to another version
set -euo pipefail
cd "$(dirname "$0")/.."
dest=internal/apidocs/assets
pinned=$(awk '$1 == "swagger-ui-dist" {print $2}' "$dest/VERSION" 2>/dev/null || true)
version=${1:-$pinned}
[[ -n $version ]] || { echo "usage: $0 <swagger-ui-dist version>" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "swagger-ui-dist@$version" >/dev/null
integrity=$(npm view "swagger-ui-dist@$version" dist.integrity)
# npm pack checks the tarball against this integrity; re-fetching the pinned version must
# yield the one recorded, or the registry's package changed under us.
if [[ $version == "$pinned" ]]; then
	recorded=$(awk '$1 == "integrity" {print $2}' "$dest/VERSION")
	[[ $integrity == "$recorded" ]] || { echo "integrity changed: $recorded -> $integrity" >&2; exit 1; }
fi
tar -xzf "$tmp/swagger-ui-dist-$version.tgz" -C "$tmp"
pkg=$tmp/package

# Only what the page loads, plus the licenses the Apache-2.0 terms ask us to pass on.
for f in swagger-ui-bundle.js swagger-ui.css; do
	gzip -9 -n -c "$pkg/$f" >"$dest/$f.gz"
done
cp "$pkg/LICENSE" "$pkg/NOTICE" "$pkg/swagger-ui-bundle.js.LICENSE.txt" "$dest/"
printf 'swagger-ui-dist %s\nintegrity %s\n' "$version" "$integrity" >"$dest/VERSION"
du -ch "$dest"/*.gz | tail -1
