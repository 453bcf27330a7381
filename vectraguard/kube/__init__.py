"""Kubernetes: manifests generated from profiles (generate.py) and the egress gateway they run (gateway.py)."""
