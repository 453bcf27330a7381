"""Docker Engine as a second container engine: its API client, its daemon, its runtime."""
