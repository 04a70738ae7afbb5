#!/usr/bin/env bash
# Regenerates the console screenshots the documentation shows (docs/overview.png,
# docs/lead.png): runs the console's browser test, which drives headless Chromium
# (Debian packages chromium and chromium-driver) and, with REWARM_SCREENSHOTS_DIR set,
# writes those two pages there as well as into its own output folder. The pictures are
# replaced only when the test passed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
REWARM_SCREENSHOTS_DIR="$out" cargo test --test it console_browser::
for png in overview lead; do
  [ -s "$out/$png.png" ] || { echo "the browser test wrote no $png.png" >&2; exit 1; }
  cp "$out/$png.png" "docs/$png.png"
done
echo "wrote docs/overview.png and docs/lead.png"
