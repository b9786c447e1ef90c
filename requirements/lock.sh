#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml: requirements/main.txt (what the image
# installs) and requirements/test.txt (main + the test extra: what CI and a development
# checkout install), every version pinned with the hashes of all its files, resolved for
# Python 3.11 on any platform. Existing pins are kept unless pyproject.toml needs another
# version; `requirements/lock.sh --upgrade` moves everything to the newest allowed
# (`--upgrade-package NAME` just one). Needs uv (pip install uv).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=$(command -v uv || echo .venv/bin/uv)
[ -x "$uv" ] || { echo "requirements/lock.sh needs uv: pip install uv" >&2; exit 1; }
common=(--universal --python-version 3.11 --generate-hashes --quiet "$@")
UV_CUSTOM_COMPILE_COMMAND="requirements/lock.sh" "$uv" pip compile pyproject.toml "${common[@]}" -o requirements/main.txt
UV_CUSTOM_COMPILE_COMMAND="requirements/lock.sh" "$uv" pip compile pyproject.toml --extra test "${common[@]}" -o requirements/test.txt
