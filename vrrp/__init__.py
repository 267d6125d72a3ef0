"""The VRRP stack. Done so far: the advert codec (packet.py) and the pure state
machine (fsm.py); see issue 3 for the rest."""
