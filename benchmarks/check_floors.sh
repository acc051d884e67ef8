#!/usr/bin/env bash
# Dependency floors, tested: a fresh venv with every dependency of pyproject.toml at its declared floor
# (">=X" installed as "==X.*": the floor's release, its latest patch with a wheel for this Python; psutil 5.9.0
# has none for 3.11), then `import harness` and the fast test lane (-m "not slow").
#
#   bash benchmarks/check_floors.sh            # torch at the version this machine has (see below)
#   FLOORS_TORCH=1 bash benchmarks/check_floors.sh   # torch at its floor too (a CUDA build from PyPI: ~2.5 GB)
#
# torch is the exception by default: PyPI's Linux wheels of old torch releases pull the CUDA runtime
# (gigabytes); on a CPU machine the script installs the torch this machine already runs and says so.
# Everything else is at its floor. Prints the resolved versions, `pip check`, and the test lane's summary;
# exits non-zero when a floor cannot be installed, the import fails or a test fails.
# Environment: FLOORS_VENV (default /tmp/harness-floors, recreated), FLOORS_REUSE=1 (keep the venv, install
# what changed), FLOORS_PYTHON (default python3), FLOORS_PYTEST_ARGS (default: -m "not slow" -q -p
# no:cacheprovider --continue-on-collection-errors).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FLOORS_VENV:-/tmp/harness-floors}
python=${FLOORS_PYTHON:-python3}
floors=$(mktemp)
trap 'rm -f "$floors"' EXIT

# ">=X" -> "==X.*" for every project dependency (an upper bound, if any, is dropped: the floor is what is tested)
"$python" - "$floors" <<'EOF'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
lines = []
for dep in deps:
    m = re.match(r"^([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*>=\s*([^,;\s]+)", dep)
    if not m:
        sys.exit(f"pyproject.toml: dependency {dep!r} has no '>=' floor")
    lines.append(f"{m[1]}=={m[2]}.*")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
if [ "${FLOORS_TORCH:-0}" != 1 ]; then
    local_torch=$("$python" -c 'import torch; print(torch.__version__)')
    floor=$(grep '^torch==' "$floors")
    sed -i "s/^torch==.*/torch==${local_torch}/" "$floors"
    echo "torch: ${local_torch} (this machine's; floor ${floor#torch==} not installed, set FLOORS_TORCH=1)"
fi
echo "== installing the floors into $venv"
cat "$floors"
if [ "${FLOORS_REUSE:-0}" != 1 ] || [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
fi
"$venv/bin/pip" install -q --only-binary=:all: -r "$floors" "pytest>=8" "pytest-timeout>=2.2"
echo "== pip check"
"$venv/bin/pip" check || true
echo "== resolved versions of the declared dependencies"
"$venv/bin/python" - "$floors" <<'EOF'
import re, sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name = re.split(r"[\[=]", line.strip())[0]
    print(f"{name:16s} {version(name)}")
EOF
echo "== import harness"
"$venv/bin/python" -c 'import harness, harness.cli.main, harness.tune.studies, harness.report.tables; print("ok", harness.__file__)'
echo "== fast lane"
if [ -n "${FLOORS_PYTEST_ARGS:-}" ]; then
    read -r -a args <<<"$FLOORS_PYTEST_ARGS"
else
    args=(-m "not slow" -q -p no:cacheprovider --continue-on-collection-errors)
fi
HF_HUB_OFFLINE=1 "$venv/bin/python" -m pytest "${args[@]}"
