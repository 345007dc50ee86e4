# Sourced by the apt installers (install-prometheus.sh, install-node-packages.sh): sets SUDO, and refuses
# service starts through policy-rc.d (exit 101) until the sourcing script exits, when any policy-rc.d that
# was there before is put back. Our tests start their own Prometheus and containerd; a package's postinst
# must not start a system service of its own. Usage: refuse_service_starts "script-name".

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
fi

POLICY=/usr/sbin/policy-rc.d
BACKUP=""
restore_policy() {
    if [[ -n "$BACKUP" ]]; then
        $SUDO mv -f "$BACKUP" "$POLICY"
    else
        $SUDO rm -f "$POLICY"
    fi
}

refuse_service_starts() {
    if [[ -e "$POLICY" ]]; then
        BACKUP="$(mktemp)"
        $SUDO cp -p "$POLICY" "$BACKUP"
    fi
    echo "$1: refusing service starts through $POLICY during the install"
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    trap restore_policy EXIT
}
