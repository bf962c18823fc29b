#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then runs
# every test with skips that matter turned into failures, short fuzz runs, and
# the checks of the shipped alert rules.
#   test/run-all.sh            (as root: the firewall and package tests need it)
set -euo pipefail
cd "$(dirname "$0")/.."
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
