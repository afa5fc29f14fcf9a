"""TLS on the lottery port: the profile (profile.py), one connection's TLS state without I/O
(tunnel.py), and the process that terminates TLS and relays plaintext to the acceptor
(terminator.py). Only the terminator process ever loads the private key."""
