#!/usr/bin/env bash
# Installs (virtualenv + pinned requirements) and runs the fast test suite; extra args go to pytest
# (e.g. `./test.sh -m slow` for the long runs). Tests run in AUXSEQ_TEST_WORKERS pytest-xdist
# processes (default 2: much of a test's time is single-threaded start-up and tracing), each test
# file in one process so that its module fixtures are built once; `-n 0` runs them in this one.
source "$(dirname "$0")/tools/venv.sh"
set +e
python -m pytest -n "${AUXSEQ_TEST_WORKERS:-2}" --dist loadfile "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
