"""`vectraguard doctor`: what this host can do for Vectra Guard, and what is missing.

finding       one check's outcome: ok, warn or fail, with a fix hint
context       the facts gathered once and shared by the checks
host_checks   user, cgroups, rlimits, limits, init, entry program, subordinate ids
podman_checks Podman, its service, OCI runtimes, network backends, image
tool_checks   helper programs: nftables, mmdebstrap
policy_checks the system policy, and the profiles it would refuse
checks        all of them, in the order they are reported
"""
