"""The VRRP stack. Done so far: the advert codec (packet.py); see issue 3."""
