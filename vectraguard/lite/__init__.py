"""The `lite` isolation level: bubblewrap, Landlock and seccomp on the host's kernel, no container engine at run time."""
