"""The runtime: the host's facts, the Podman service, and running one session."""
