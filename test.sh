#!/usr/bin/env bash
# Installs (virtualenv + pinned requirements) and runs the fast test suite; extra args go to pytest
# (e.g. `./test.sh -m slow` for the long runs).
source "$(dirname "$0")/tools/venv.sh"
set +e
python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
