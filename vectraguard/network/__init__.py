"""Network policy: `none`, or an egress allowlist served from the host."""
