#!/usr/bin/env bash
# Vendors TradingView Lightweight Charts (Apache-2.0) into assets/vendor/: the pinned
# standalone, minified build and its licence, from the npm registry (npm pack), the
# tarball checked against the registry's published integrity. The console loads it
# from the binary: no CDN at run time, no JS toolchain at build time.
#
#   internal/console/vendor.sh        # re-run after changing VERSION/INTEGRITY
set -euo pipefail

VERSION=5.3.0
INTEGRITY='sha512-w16fu2/FteUkIJdgc9G2tOCKs1fwFSqnqF8+kMgHGv0uGIfcfpEJhziSaQbML1yrkbeg4nQXV3msjmhBzhLNhw=='

here=$(cd "$(dirname "$0")" && pwd)
out="$here/assets/vendor"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "lightweight-charts@$VERSION" >/dev/null)
tgz="$tmp/lightweight-charts-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
	echo "vendor.sh: lightweight-charts@$VERSION integrity $got, want $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp"

mkdir -p "$out"
cp "$tmp/package/dist/lightweight-charts.standalone.production.js" "$out/lightweight-charts.js"
cp "$tmp/package/LICENSE" "$out/lightweight-charts.LICENSE"
# The npm package leaves out the repository's NOTICE file, whose attribution notice
# the licence's README asks users to show; this is its text at the tag
# (https://github.com/tradingview/lightweight-charts/blob/v$VERSION/NOTICE).
cat > "$out/lightweight-charts.NOTICE" <<NOTICE
TradingView Lightweight Charts
Copyright (с) 2023 TradingView, Inc. https://www.tradingview.com/
NOTICE
echo "lightweight-charts@$VERSION $INTEGRITY" > "$out/VERSION"
