"""Isolation levels: what stands between a sandbox and the host's kernel.

`container` (runc through Podman: namespaces, seccomp, no capabilities),
`gvisor` (the same container run by gVisor's runsc: a second kernel in user
space between the sandbox and the host's), and `lite` (no container engine
at run time). levels.py names and orders them; gvisor.py is the gVisor
level's runtime (wrappers, seccomp profile); files.py the host files a level
needs; views.py where the host sees a sandbox's mounts. What this host
supports: doctor/isolation_checks.py; the runtime a profile compiles to:
sandbox/compile.py (isolation_runtime).
"""
