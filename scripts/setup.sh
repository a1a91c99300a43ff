#!/usr/bin/env bash
# LineSight setup: installs what building, testing and running LineSight need,
# and nothing that is already there. Idempotent; a second run takes seconds.
#
#   scripts/setup.sh           install what is missing
#   scripts/setup.sh --check   only report what is missing (exit 1 if anything is)
#
# On Debian 12 (as root, or through sudo) it installs:
#   - build tools, pkg-config and OpenCV 4.6 (libopencv-dev) for gocv v0.31.0
#   - the training stack: python3-torch python3-onnx python3-opencv python3-numpy
#   - mosquitto (MQTT broker for tests; its service is left disabled)
#   - chromium (headless browser for the review UI tests)
#   - ONNX Runtime 1.24.1 for Linux x64, taken from the npm package
#     onnxruntime-node@1.24.1, checked against a pinned sha256, and kept in
#     the git-ignored cache folder .cache/onnxruntime/
#   - ImageNet-trained MobileNetV2 weights for train.py --arch mnv2seg, taken
#     from the npm package nsfwjs@4.4.0 (scripts/train/backbone.sh, pinned
#     sha256) into .cache/backbone/mobilenet_v2/
#   - the Go modules in go.sum (go mod download)
# On other systems it says what to install by hand (see README, "Setup").
set -euo pipefail

ORT_VERSION=1.24.1
ORT_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
ORT_MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
GO_MIN=1.26

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root/.cache"
ort_dir="$cache/onnxruntime/$ORT_VERSION/linux-x64"
ort_lib="$ort_dir/libonnxruntime.so.1"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  build-essential pkg-config libopencv-dev
  python3 python3-torch python3-onnx python3-opencv python3-numpy
  mosquitto mosquitto-clients
  chromium
  ca-certificates
)
# npm fetches ONNX Runtime. Node.js from nodesource bundles npm and conflicts
# with Debian's npm package, so Debian's is installed only when none is there.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()

# --- Debian packages -------------------------------------------------------
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ $check_only = 1 ]; then
      say "missing Debian packages: ${missing[*]}"
    else
      SUDO=""
      if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
        SUDO="sudo"
      fi
      say "installing Debian packages: ${missing[*]}"
      $SUDO apt-get update -qq >/dev/null
      # policy-rc.d exit 101 keeps package scripts from starting services
      # (mosquitto) while we install; it is removed right after.
      prc=/usr/sbin/policy-rc.d
      made_prc=0
      if [ ! -e $prc ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee $prc >/dev/null && $SUDO chmod +x $prc && made_prc=1
      fi
      mkdir -p "$cache"
      log="$cache/setup-apt.log"
      say "  (apt output goes to $log)"
      if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        [ $made_prc = 1 ] && $SUDO rm -f $prc
        tail -20 "$log" >&2
        die "apt-get install failed (full log: $log)"
      fi
      [ $made_prc = 1 ] && $SUDO rm -f $prc
      # The broker is for tests, which start their own; keep the service off,
      # now and after a reboot, whether or not systemd is running.
      if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable mosquitto >/dev/null 2>&1 || true
        [ -d /run/systemd/system ] && { $SUDO systemctl stop mosquitto >/dev/null 2>&1 || true; }
      fi
      command -v update-rc.d >/dev/null 2>&1 && { $SUDO update-rc.d mosquitto disable >/dev/null 2>&1 || true; }
      missing=()
    fi
  else
    say "Debian packages: all present"
  fi
else
  say "not a Debian system: install by hand OpenCV 4.6 with pkg-config (opencv4.pc), a C/C++ toolchain,"
  say "  Python 3 with torch 1.13, onnx, opencv and numpy, mosquitto, chromium and npm (see README, Setup)"
fi

# --- Go --------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  die "Go >= $GO_MIN is not on PATH; install it from your distribution or go.dev and re-run"
fi
gov=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$gov" | sort -V | head -1)" != "$GO_MIN" ]; then
  die "Go $gov is too old; LineSight needs Go >= $GO_MIN"
fi

# --- ONNX Runtime ----------------------------------------------------------
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$ort_lib" ] && [ "$(sha_of "$ort_lib")" = "$ORT_SHA256" ]; then
  say "ONNX Runtime $ORT_VERSION: present ($ort_lib)"
elif [ $check_only = 1 ]; then
  say "missing: ONNX Runtime $ORT_VERSION at $ort_lib"
  missing+=(onnxruntime)
else
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch ONNX Runtime (apt-get install npm)"
  [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || \
    die "the ONNX Runtime fetched here is for Linux x86_64; on $(uname -s)-$(uname -m) install libonnxruntime $ORT_VERSION by hand and set LINESIGHT_ONNXRUNTIME_LIB (see README)"
  say "fetching ONNX Runtime $ORT_VERSION (npm pack onnxruntime-node@$ORT_VERSION)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>"$tmp/npm.err") \
    || die "npm pack onnxruntime-node@$ORT_VERSION failed: $(tail -3 "$tmp/npm.err")"
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" "$ORT_MEMBER" \
    || die "the npm package has no $ORT_MEMBER"
  got=$(sha_of "$tmp/$ORT_MEMBER")
  [ "$got" = "$ORT_SHA256" ] || die "sha256 of libonnxruntime.so.1 is $got, expected $ORT_SHA256; not installing it"
  mkdir -p "$ort_dir"
  install -m 0644 "$tmp/$ORT_MEMBER" "$ort_lib.tmp" && mv "$ort_lib.tmp" "$ort_lib"
  say "ONNX Runtime $ORT_VERSION: installed at $ort_lib (sha256 ok)"
fi

# --- Python training stack -------------------------------------------------
# Debian's torch lives in the system interpreter; pyenv or a venv on PATH
# would not see it, so everything uses /usr/bin/python3.
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch, onnx, cv2, numpy' 2>/dev/null; then
  say "Python training stack: ok (/usr/bin/python3)"
else
  say "Python training stack: torch, onnx, cv2 or numpy not importable by /usr/bin/python3 (needed only for training)"
  [ $check_only = 1 ] && missing+=(python-stack)
fi

# --- MobileNetV2 backbone (train.py --arch mnv2seg --pretrained) -----------
backbone_dir="$root/.cache/backbone/mobilenet_v2"
if [ $check_only = 1 ]; then
  [ -f "$backbone_dir/weights.bin" ] || { say "missing: MobileNetV2 weights at $backbone_dir"; missing+=(backbone); }
else
  bash "$root/scripts/train/backbone.sh" "$backbone_dir" || die "could not fetch the MobileNetV2 backbone (scripts/train/backbone.sh)"
fi

# --- Go modules ------------------------------------------------------------
if [ $check_only = 0 ]; then
  (cd "$root" && go mod download) || die "go mod download failed"
  say "Go modules: downloaded"
fi

mkdir -p "$cache"
if [ $check_only = 1 ]; then
  [ ${#missing[@]} -eq 0 ] || exit 1
  say "nothing missing"
else
  touch "$cache/setup.done"
  say "done"
fi
