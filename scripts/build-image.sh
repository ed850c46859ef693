#!/usr/bin/env bash
# Builds the operator image with buildah (rootless-capable: vfs storage, chroot isolation; no
# Docker engine needed) and runs the bundled replay inside it.
#
# 1. The Dockerfile, when the base images (rust:1.95-bookworm, gcr.io/distroless/cc-debian12) can be
#    pulled.
# 2. Else — no registry reachable, as on this project's build machines — an image from scratch
#    with the release binary and the shared libraries `ldd` lists (glibc, libgcc_s), user 65532.
#
# Usage: scripts/build-image.sh [TAG]   (default localhost/cellwarden:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-localhost/cellwarden:dev}"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
if ! command -v buildah >/dev/null; then
  echo "build-image.sh: installing Debian's buildah" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah
fi
if buildah pull --quiet docker.io/library/rust:1.95-bookworm >/dev/null 2>&1; then
  echo "== buildah bud -f Dockerfile"
  buildah bud --layers -f Dockerfile -t "$TAG" .
else
  echo "== no registry reachable (buildah pull failed); building from scratch with the release binary"
  cargo build --release --locked --bin cellwarden
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mnt=$(buildah mount "$ctr")
  bin=target/release/cellwarden
  install -D -m 0755 "$bin" "$mnt/usr/local/bin/cellwarden"
  strip "$mnt/usr/local/bin/cellwarden" || true
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$mnt$lib"
  done
  mkdir -p "$mnt/fixtures" "$mnt/tmp"
  cp -r fixtures/memory-leak "$mnt/fixtures/"
  buildah umount "$ctr" >/dev/null
  buildah config --entrypoint '["/usr/local/bin/cellwarden"]' --cmd 'run --config /etc/cellwarden/cellwarden.yaml' \
    --user 65532:65532 --port 4318 --port 8081 "$ctr"
  buildah commit --quiet "$ctr" "$TAG" >/dev/null
fi
buildah images "$TAG"
echo "== cellwarden replay fixtures/memory-leak, inside the image"
run=$(buildah from "$TAG")
trap 'buildah rm "$run" >/dev/null 2>&1 || true' EXIT
out=$(mktemp)
buildah run "$run" -- /usr/local/bin/cellwarden replay /fixtures/memory-leak > "$out"
head -5 "$out"
grep -c "incident" "$out" | xargs echo "incident lines:"
rm -f "$out"
