#!/usr/bin/env bash
# PyTorch baseline for the benchmark suite (`make bench-peers`).
#   bash scripts/bench-peers.sh [--quick] [--filter REGEX] [--json PATH] ...
# 1. finds a python3 that can `import torch`; if none, installs Debian's python3-torch
#    (apt-get update + install, only then; as root or through sudo);
# 2. checks benchmark/peers/moe_torch.py against the PyTorch fixture
#    (../shared/fixtures/tiny_mqa.safetensors, override with ROSETTA_FIXTURE) and stops if
#    it does not match;
# 3. runs benchmark/peers/bench_pytorch.py with the arguments given here
#    (default output benchmarks/pytorch.json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${ROOT}/benchmark/peers"
FIXTURE="${ROSETTA_FIXTURE:-${ROOT}/../shared/fixtures/tiny_mqa.safetensors}"
# A clone made elsewhere: look beside the repository it was cloned from (a local origin).
if [[ -z "${ROSETTA_FIXTURE:-}" && ! -f "${FIXTURE}" ]]; then
  origin="$(git -C "${ROOT}" config --get remote.origin.url 2>/dev/null || true)"
  if [[ -n "${origin}" && -f "${origin}/../shared/fixtures/tiny_mqa.safetensors" ]]; then
    FIXTURE="${origin}/../shared/fixtures/tiny_mqa.safetensors"
  fi
fi

# python3 on PATH may be a pyenv/venv interpreter that does not see Debian's
# dist-packages, so /usr/bin/python3 is tried too. PYTHON=... overrides.
find_python() {
  local candidates=()
  if [[ -n "${PYTHON:-}" ]]; then
    candidates=("${PYTHON}")
  else
    candidates=(python3 /usr/bin/python3)
  fi
  local py
  for py in "${candidates[@]}"; do
    if command -v "${py}" >/dev/null 2>&1 && "${py}" -c 'import torch' >/dev/null 2>&1; then
      command -v "${py}"
      return 0
    fi
  done
  return 1
}

if ! PY="$(find_python)"; then
  echo "bench-peers: no python3 can import torch; installing python3-torch from Debian"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench-peers: error: apt-get not found; install PyTorch for python3 yourself" \
         "(e.g. pip install torch) or set PYTHON=/path/to/python" >&2
    exit 1
  fi
  if [[ ${EUID} -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "bench-peers: error: not root and sudo is not available; as root, run:" >&2
    echo "  apt-get update && apt-get install -y python3-torch python3-numpy" >&2
    exit 1
  fi
  if ! "${as_root[@]}" apt-get update \
     || ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
          apt-get install -y python3-torch python3-numpy; then
    echo "bench-peers: error: apt-get could not install python3-torch" >&2
    exit 1
  fi
  if ! PY="$(PYTHON="${PYTHON:-/usr/bin/python3}" find_python)"; then
    echo "bench-peers: error: python3-torch installed but '${PYTHON:-/usr/bin/python3}'" \
         "still cannot import torch" >&2
    exit 1
  fi
fi
echo "bench-peers: using ${PY} (torch $("${PY}" -c 'import torch; print(torch.__version__)'))"

if [[ ! -f "${FIXTURE}" ]]; then
  echo "bench-peers: error: fixture not found: ${FIXTURE} (set ROSETTA_FIXTURE)" >&2
  exit 1
fi
echo "bench-peers: checking the PyTorch model against ${FIXTURE}"
if ! "${PY}" "${PEERS}/moe_torch.py" --check "${FIXTURE}"; then
  echo "bench-peers: error: moe_torch.py does NOT match the fixture ${FIXTURE};" \
       "not benchmarking a model that computes something else" >&2
  exit 1
fi

cd "${ROOT}"
exec "${PY}" "${PEERS}/bench_pytorch.py" "$@"
