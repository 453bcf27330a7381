"""A resident per-user fork server, so a run does not pay for its imports.

`vectraguard run` and `check` spend most of their start in the
interpreter importing ~170 modules (~40 ms of ~55 before the first call to
Podman; ~300 modules with an allowlist). The server (server.py) has
imported them once; the client (client.py, all the console script runs
first) passes it the command line, environment, working directory, standard
streams and terminal, and the server forks a process that becomes the
client's in all of that and runs the command as the client would have
(child.py), after checking that the client is no more confined than the
server (peer.py). The client forwards signals and exits with the run's
status. Whenever anything is not as expected the client runs the command
itself: the server is an optimisation, never a requirement. The installed
`vectraguard` is the same client in C, without an interpreter
(contrib/client/vectraguard-client.c; its build identity: native.py); it
execs the Python front end for whatever it does not serve.

Trust: the server runs with the user's own authority and answers only that
user (a 0700 runtime directory, SO_PEERCRED both ways), and only clients
with the same credentials, capabilities, no_new_privs, seccomp state,
namespaces and LSM label as its own. VECTRAGUARD_FORKSERVER=0 turns it off.
"""
