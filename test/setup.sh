#!/usr/bin/env bash
# Installs the system packages the test suite needs (Debian/Ubuntu, as root):
# the kernel tools the firewall tests drive inside network namespaces, and
# prometheus for its promtool (the alert rules' checks; a binary install
# instead of building the Prometheus tree from source).
set -euo pipefail
packages=(nftables iptables ipset iproute2 ca-certificates systemd debootstrap util-linux prometheus)
if [ "$(id -u)" -ne 0 ]; then
  echo "test/setup.sh: run as root (the firewall tests need root and network namespaces)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Install packages without starting their services (prometheus ships one).
prc=/usr/sbin/policy-rc.d
if [ ! -e "$prc" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod 0755 "$prc"
  trap 'rm -f "$prc"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "test/setup.sh: installed ${packages[*]}"
