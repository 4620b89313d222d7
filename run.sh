#!/usr/bin/env bash
# Installs (virtualenv + pinned requirements) and runs auxseq; with no arguments, the default job.
source "$(dirname "$0")/tools/venv.sh"
exec python main.py "$@"
