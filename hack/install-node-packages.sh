#!/usr/bin/env bash
# Install the Debian packages a real node needs (python -m readiness.envtest node up), once.
#
#   runc containerd containernetworking-plugins  the container runtime and the CNI bridge plugins
#   iptables conntrack socat ethtool              what kube-proxy and kubelet call or look for
#   buildah debootstrap busybox-static gcc        building the images without a registry
#   libc6-dev                                     (gcc -static for the pause image)
#   zsh fish                                      not for the node: the tests syntax-check the CLI's
#                                                 shell completions with them (bash is always there)
#
# Idempotent: does nothing when every package is installed. containerd's package would start a system
# service on a machine with systemd; the node runs its own containerd in its own namespaces, so service
# starts are refused through policy-rc.d (exit 101) during the install, as for Prometheus.
set -euo pipefail

PACKAGES=(runc containerd containernetworking-plugins iptables conntrack socat ethtool
          buildah debootstrap busybox-static gcc libc6-dev zsh fish)
missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-node-packages: all ${#PACKAGES[@]} packages present; nothing to do"
    exit 0
fi

# shellcheck source=hack/no-service-starts.sh
source "$(dirname "$0")/no-service-starts.sh"
refuse_service_starts install-node-packages

echo "install-node-packages: apt-get install ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now containerd.service >/dev/null 2>&1 || true
fi
echo "install-node-packages: done"
