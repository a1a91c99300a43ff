#!/usr/bin/env bash
# scripts/train/backbone.sh [DIR]: writes ImageNet-trained MobileNetV2 weights
# to DIR (default .cache/backbone/mobilenet_v2) for train.py --arch mnv2seg
# --pretrained DIR. Idempotent: a DIR whose weights.bin has the pinned
# sha256 is left as it is.
#
# Where the weights come from: the npm package nsfwjs (MIT licence) bundles a
# Keras MobileNetV2 (alpha 1, 224 px, uint8-quantised weights) as JavaScript
# modules. Its layers up to block_10 were frozen when it was fine-tuned
# (their Keras config says trainable: false), so they are the ImageNet
# weights of keras.applications; blocks 11 and 12, also used by the trunk,
# were fine-tuned on that package's own task. Only the npm registry is
# reachable from the machines this project builds on, and this is the one
# package there that ships a general image backbone's weights.
set -euo pipefail
PKG=nsfwjs@4.4.0
SHA256=8e7dddbb16acacc1bf1601b1b8a761e730ff934b7f2d7771312b2f000e5f5f13  # weights.bin
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-$root/.cache/backbone/mobilenet_v2}
die() { echo "backbone: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dir/weights.bin" ] && [ -f "$dir/manifest.json" ] && [ "$(sha_of "$dir/weights.bin")" = "$SHA256" ]; then
  echo "backbone: MobileNetV2 weights present ($dir)"
  exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm is needed to fetch the backbone (apt-get install npm)"
command -v node >/dev/null 2>&1 || die "node is needed to unpack the backbone (apt-get install nodejs)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "backbone: fetching MobileNetV2 weights (npm pack $PKG)"
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>"$tmp/npm.err") || die "npm pack $PKG failed: $(tail -3 "$tmp/npm.err")"
m=package/dist/models/mobilenet_v2
tar -xzf "$tmp"/nsfwjs-*.tgz -C "$tmp" "$m/model.min.js" "$m/group1-shard1of1.min.js" package/LICENSE \
  || die "the npm package $PKG has no $m"
node "$here/tfjs_weights.js" "$tmp/$m/model.min.js" "$tmp/$m/group1-shard1of1.min.js" "$tmp/out" \
  || die "could not unpack the weights of $PKG"
got=$(sha_of "$tmp/out/weights.bin")
[ "$got" = "$SHA256" ] || die "sha256 of the unpacked weights is $got, expected $SHA256; not installing them"
cp "$tmp/package/LICENSE" "$tmp/out/LICENSE"
echo "MobileNetV2 (Keras, alpha 1) from the npm package $PKG, $m; weights.bin sha256 $SHA256" > "$tmp/out/SOURCE"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && cp -r "$tmp/out" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "backbone: MobileNetV2 weights written to $dir (sha256 ok)"
