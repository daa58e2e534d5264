#!/bin/bash
# hostile.sh [SECONDS] — battery row 6 (issue 9), the long version: every
# attack of tests/cli/hostile.sh held for SECONDS (default 30) instead of 2.
exec bash "$(dirname "$0")/../cli/hostile.sh" "${1:-30}"
