#!/bin/bash
# notify script for scenario 002: notify.sh VIP ROLE appends a mail-like record to
# $KEEPALIVED_MAIL (default /var/log/keepalived.mail).
vip=$1 role=$2
out=${KEEPALIVED_MAIL:-/var/log/keepalived.mail}
{
    echo "$(hostname) to be ${role}: ${vip} floating"
    echo "$(date '+%F %H:%M:%S'): vrrp transition, $(hostname) changed to be ${role} as $(id -un)"
    echo
} >> "$out"
