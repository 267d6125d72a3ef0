#!/bin/bash
# vrrp_script for scenario 002: success while nginx answers HTTP on this node.
# (The seed's script also restarts nginx and stops keepalived when that fails; with
# weight -5 against a backup 10 below, only such a stop moves the VIP.)
exec "$(dirname "$0")/nginx-ha-check" 127.0.0.1 80
