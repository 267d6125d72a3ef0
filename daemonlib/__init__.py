"""What the daemons share, below vrrp/, checkers/ and director/ and above conf/:
running scripts under one policy (`scripts`), the notify FIFO (`fifo`), the runtime
directory and signal plumbing (`runtime`), the Internet checksum (`checksum`) and
track_file arithmetic (`trackfile`). Imports only conf/ and the standard library."""
