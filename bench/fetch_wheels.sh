#!/usr/bin/env bash
# Download the two pure-Python wheels a GPU machine without network lacks (array-api-compat and
# array-api-strict, py3-none-any) into .whl/ at the repository root, for bench/device_check.sh.
# Usage (from anywhere, on a machine with network): bash bench/fetch_wheels.sh [python]
# The versions are the ones installed in the given Python (default: python3), so the GPU machine
# runs what was tested here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
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
