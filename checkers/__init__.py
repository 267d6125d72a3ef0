"""Health checkers: the engine (one scheduler on the loop clock), the probes
(TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK,
PING_CHECK, FILE_CHECK), keepalived's retry logic and `genhash`.
Layer: imports conf/ and daemonlib/ only; director/ drives it."""
