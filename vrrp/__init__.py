"""The VRRP stack (not implemented yet: see issue 3)."""
