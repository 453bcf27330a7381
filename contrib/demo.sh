#!/bin/sh
# A short tour of what a sandboxed process can and cannot do. Run it inside
# a sandbox: vectraguard run --profile untrusted -- sh contrib/demo.sh
try() { printf '  %-44s' "$1"; shift; if "$@" >/dev/null 2>&1; then echo "allowed"; else echo "blocked"; fi; }

echo "who am I:        $(id)"
echo "capabilities:    $(grep '^CapEff' /proc/self/status | cut -f2)  (0 = none)"
echo "no_new_privs:    $(grep '^NoNewPrivs' /proc/self/status | cut -f2)"
echo "seccomp mode:    $(grep '^Seccomp:' /proc/self/status | cut -f2)  (2 = filtering)"
echo "network devices: $(ls /sys/class/net | tr '\n' ' ')"
echo "environment:     $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "what it may do:"
try "write to the root filesystem (/etc)" touch /etc/demo
try "write to the workspace (read-only)" touch /workspace/demo
try "write to /tmp (size-capped tmpfs)" touch /tmp/demo
try "create a user namespace (unshare -U)" unshare -U true
try "become root (su)" su -c true
