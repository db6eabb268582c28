#!/usr/bin/env bash
# Unpack ONNX Runtime's C/C++ headers from Debian's libonnxruntime-dev into DEST (default build/ci-deps/ort-dev)
# without installing it, and print the include folder. Debian 13 (trixie) has the package; on Debian 12 (bookworm)
# it is downloaded from trixie through an isolated apt state (bookworm's keyring verifies trixie). The headers are
# C-API-compatible with the newer library of the onnxruntime wheel, which is what svbr links for bit-exact parity.
set -euo pipefail
DEST="${1:-build/ci-deps}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
if [ -f "$DEST/ort-dev/usr/include/onnxruntime/onnxruntime_cxx_api.h" ]; then
  echo "$DEST/ort-dev/usr/include/onnxruntime"
  exit 0
fi
rm -f "$DEST"/libonnxruntime-dev_*.deb
if apt-cache show libonnxruntime-dev >/dev/null 2>&1; then
  (cd "$DEST" && apt-get download -qq libonnxruntime-dev) >&2
else
  mkdir -p "$DEST/apt/lists/partial" "$DEST/apt/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$DEST/apt/sources.list"
  T=(-o "Dir::Etc::sourcelist=$DEST/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
     -o "Dir::State::Lists=$DEST/apt/lists" -o "Dir::Cache=$DEST/apt/cache")
  apt-get "${T[@]}" update -qq >&2
  (cd "$DEST" && apt-get "${T[@]}" download -qq libonnxruntime-dev) >&2
fi
dpkg -x "$DEST"/libonnxruntime-dev_*.deb "$DEST/ort-dev"
echo "$DEST/ort-dev/usr/include/onnxruntime"
