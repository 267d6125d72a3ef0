"""What the daemons share, below vrrp/, checkers/ and director/ and above conf/:
running scripts under one policy applied at config load (`scripts`), writing files
without following links, atomically and with our modes (`safefile`), the notify FIFO
(`fifo`), the runtime directory and signal plumbing (`runtime`), the Internet checksum
(`checksum`) and track_file arithmetic (`trackfile`). Imports only conf/, attrs and the
standard library."""
