#!/usr/bin/env bash
# Prepare what a GPU machine without network lacks, for bench/device_check.sh (carry both folders):
#   .whl/   the two pure-Python wheels (array-api-compat and array-api-strict, py3-none-any);
#   .data/  MNIST (11 MB of .gz files) from $NNBACKEND_DATA or ../shared/data, so that the benchmark
#           runs on the real 56,000 images rather than the sample in the package.
# Usage (from anywhere, on a machine with network): bash bench/fetch_wheels.sh [python]
# The versions are the ones installed in the given Python (default: the repository's .venv, else
# python3), so the GPU machine runs what was tested here.
set -euo pipefail
cd "$(dirname "$0")/.."
default_py=python3
[ -x .venv/bin/python ] && default_py=.venv/bin/python
PY=${1:-$default_py}

for root in "${NNBACKEND_DATA:-}" ../shared/data; do
    if [ -n "$root" ] && [ -d "$root/mnist" ]; then
        mkdir -p .data/mnist
        cp "$root"/mnist/*-ubyte* .data/mnist/
        echo "MNIST copied from $root into .data/mnist ($(du -sh .data | cut -f1))"
        break
    fi
done
[ -d .data/mnist ] || echo "no MNIST found (set NNBACKEND_DATA): the benchmark will use the package's sample"

versions=$("$PY" - <<'PYEOF'
from importlib.metadata import version, PackageNotFoundError
out = []
for name in ("array-api-compat", "array-api-strict"):
    try:
        out.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        out.append(name)
print(" ".join(out))
PYEOF
)
mkdir -p .whl
echo "downloading: $versions"
# shellcheck disable=SC2086
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --dest .whl $versions
ls -l .whl
