#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then runs
# every test with skips that matter turned into failures, short fuzz runs, and
# the checks of the shipped alert rules.
#   test/run-all.sh            (as root: the firewall and package tests need it)
#   test/run-all.sh --tree     (only the tracked-file size check; no root needed)
set -euo pipefail
cd "$(dirname "$0")/.."

# A build output committed by mistake (a 30 MB binary) bloats every clone
# forever; fail on any tracked file over 1 MB. Sizes come from the index's
# blobs, so the check means the same in a fresh clone as in a dirty tree.
check_tracked_sizes() {
  local limit=$((1024 * 1024)) big
  big=$(git ls-files --stage | sed 's/^[0-7]* \([0-9a-f]*\) [0-3]\t/\1 /' |
    git cat-file --batch-check='%(objectsize) %(rest)' |
    awk -v limit="$limit" '$1 > limit { printf "  %s (%.1f MB)\n", substr($0, index($0, " ") + 1), $1 / 1048576 }')
  if [ -n "$big" ]; then
    printf 'tracked files over 1 MB (remove them and add them to .gitignore):\n%s\n' "$big" >&2
    return 1
  fi
  echo "tracked files: none over 1 MB"
}
check_tracked_sizes
if [ "${1:-}" = "--tree" ]; then
  exit 0
fi

test/setup.sh
export NCS_GATEWAY_TEST_STRICT=1   # a test that cannot run here fails instead of skipping
go version
go vet ./...

# promtool from Debian's prometheus package (test/setup.sh installs it).
(cd configs && promtool check rules alerts.yml && promtool test rules alerts_test.yml)

for fuzz in FuzzVerifyParse:./pkg/webhook FuzzScanEnvelope:./pkg/webhook FuzzDecode:./pkg/ncsip; do
  go test -count=1 -run '^$' -fuzz "^${fuzz%%:*}\$" -fuzztime 10s "${fuzz#*:}"
done
go test -count=1 -timeout 45m ./...
