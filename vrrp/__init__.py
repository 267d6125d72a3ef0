"""The VRRP stack: advert codec (packet), pure receive checks and state machine
(receive, fsm), sockets, addresses, GARP/NA, trackers, one instance at run time
(router), sync groups and the child's loop (daemon, main), dumps.
Layer: imports conf/ and daemonlib/ only; director/ runs it."""
