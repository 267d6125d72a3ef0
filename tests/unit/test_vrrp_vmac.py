"""The VMAC's addresses (vrrp/addresses.py): keepalived's virtual MACs and the EUI-64
link-local address it builds when the base interface has none."""

from __future__ import annotations

from vrrp.addresses import eui64_link_local, vmac_address


def test_virtual_macs():
    assert vmac_address(51, 4) == "00:00:5e:00:01:33"
    assert vmac_address(51, 6) == "00:00:5e:00:02:33"
    assert vmac_address(255, 6) == "00:00:5e:00:02:ff"


def test_eui64_link_local():
    assert eui64_link_local("52:54:00:12:34:56") == "fe80::5054:ff:fe12:3456"
    assert eui64_link_local("02:00:00:00:00:01") == "fe80::ff:fe00:1"  # U/L bit flipped
