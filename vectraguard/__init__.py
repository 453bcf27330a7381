"""Vectra Guard: run risky commands, scripts and AI agents in locked-down Podman sandboxes."""

__version__ = "0.1.0"
