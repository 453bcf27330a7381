"""Vectra Guard on Kubernetes: profiles as Pods and NetworkPolicies, and the egress gateway they use."""
