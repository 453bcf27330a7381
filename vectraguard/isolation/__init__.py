"""Isolation levels: what stands between a sandbox and the host's kernel.

`container` (runc through Podman: namespaces, seccomp, no capabilities),
`gvisor` (the same container run by gVisor's runsc: a second kernel in user
space between the sandbox and the host's), and `lite` (no container engine
at run time). levels.py names and orders them; gvisor.py maps a run to the
OCI runtime that gives it; support.py says what this host can run.
"""
