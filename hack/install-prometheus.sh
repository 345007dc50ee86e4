#!/usr/bin/env bash
# Install Debian's prometheus package (prometheus + promtool) for the alert-rule tests.
#
# Idempotent: does nothing when /usr/bin/prometheus and /usr/bin/promtool are both present.
# The package's postinst would start a system service; the tests start their own Prometheus on loopback,
# so service starts are refused through policy-rc.d (exit 101) for the duration of the install, and a
# service that got started anyway (a machine with systemd) is stopped and disabled afterwards.
set -euo pipefail

if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then
    echo "install-prometheus: /usr/bin/prometheus and /usr/bin/promtool present; nothing to do"
    exit 0
fi

# shellcheck source=hack/no-service-starts.sh
source "$(dirname "$0")/no-service-starts.sh"
refuse_service_starts install-prometheus

echo "install-prometheus: apt-get update"
$SUDO apt-get update -qq
echo "install-prometheus: apt-get install prometheus (no recommends)"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    echo "install-prometheus: stopping and disabling the prometheus system service"
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

echo "install-prometheus: $(/usr/bin/prometheus --version 2>&1 | head -n 1)"
echo "install-prometheus: $(/usr/bin/promtool --version 2>&1 | head -n 1)"
