#!/bin/bash
# SPDX-License-Identifier: MIT
# The cheap endpoints under a flood of expensive queries, two daemons side by
# side in one run (issue 23, item 8): tests/http/test_starve.py against BEFORE
# then AFTER, over the same 100000 synthetic forks; prints one table.
# Use release builds (no sanitizers); the figures are in docs/operations.md.
#
# Usage: starve.sh BUILD_DIR BEFORE_PTESCOPED AFTER_PTESCOPED [DURATION_S]
set -euo pipefail
build=$(realpath "${1:?usage: starve.sh BUILD_DIR BEFORE_PTESCOPED AFTER_PTESCOPED [DURATION_S]}")
before=$(realpath "${2:?before}")
after=$(realpath "${3:?after}")
here=$(cd "$(dirname "$0")/../../http" && pwd)
scratch=$(mktemp -d /tmp/ptescope-starve.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cd "$here"
SCRATCH=$scratch HTTP_SYNTH=$build/tests/http/http_synth HTTP_DRIVER=$build/tests/http/http_driver \
	python3 test_starve.py "$after" "$before" --duration "${4:-10}"
