#!/usr/bin/env bash
# Installs what cim-realm needs on a Debian machine with Node 20+, skipping what is already there.
#   scripts/setup.sh run    nats-server + npm dependencies (enough for `realm up`)
#   scripts/setup.sh test   + the real peers the tests talk to (openssl, slapd, knot, dig/kdig, dnsperf, chromium, certbot, lego, caddy)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

runtime_pkgs=(nats-server openssl ca-certificates)
test_pkgs=(slapd ldap-utils freeradius-utils knot knot-dnsutils dnsutils dnsperf chromium bind9-dnsutils bind9-utils knot-dnssecutils ldnsutils openssh-server openssh-client certbot lego caddy)

pkgs=("${runtime_pkgs[@]}")
[ "$mode" = "test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: cim-realm needs Node.js 20.19 or newer (found $(node -v))" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
