"""The sandbox: what a run asks for, its mounts, and the container spec it compiles to."""
