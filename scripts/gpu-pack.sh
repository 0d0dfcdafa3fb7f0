#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for scripts/gpu-check.sh on a bare GPU machine: a `--features cuda`
# release binary, stripped and xz-compressed (about 69 MB -> 11 MB, so the tree stays under the 64 MiB
# a device call carries). The parity cases travel with the working tree (tests/fixtures/parity).
#
#   scripts/cuda-toolchain.sh && scripts/gpu-pack.sh
#   then on the device, from the repository root:  bash scripts/gpu-check.sh   (carry: .device)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f .cuda/env.sh ] || { echo "gpu-pack: run scripts/cuda-toolchain.sh first" >&2; exit 2; }
# shellcheck disable=SC1091
source .cuda/env.sh
cargo build --release --features cuda
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p .device
strip -o .device/hone "$target/release/hone"
xz -6 -T2 -f .device/hone
ls -la .device .device/hone.xz >&2
