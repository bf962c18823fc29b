#!/usr/bin/env bash
# Installs the system packages the test suite needs (Debian/Ubuntu, as root):
# the kernel tools the firewall tests drive inside network namespaces.
set -euo pipefail
packages=(nftables iptables ipset iproute2 ca-certificates systemd debootstrap)
if [ "$(id -u)" -ne 0 ]; then
  echo "test/setup.sh: run as root (the firewall tests need root and network namespaces)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "test/setup.sh: installed ${packages[*]}"
