#!/usr/bin/env bash
# Installs the Debian packages rosetta needs to build and test. Idempotent: when every
# package is already installed it only prints one line (no apt-get, no sudo).
#   bash scripts/install-deps.sh
set -euo pipefail

# The one list of build/test dependencies. Add new packages here.
PACKAGES=(
  build-essential
  cmake
  libeigen3-dev
  libblis-dev
  libblis-serial-dev
  libopenblas-dev
  libhwy-dev
  libgtest-dev
  libbenchmark-dev
  nlohmann-json3-dev
  libcli11-dev
  libfmt-dev
  clang-format
  libsentencepiece-dev
  python3-matplotlib
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian/Ubuntu system (no dpkg-query); install these yourself:" >&2
  echo "  ${PACKAGES[*]}" >&2
  exit 0
fi

# One dpkg-query call for all packages; unknown packages simply do not show up.
installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)"
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! grep -qx "${pkg} installed" <<<"${installed}"; then
    missing+=("${pkg}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: missing packages: ${missing[*]}"
if [[ ${EUID} -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: error: not root and sudo is not available; as root, run:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
