"""A pool of sandboxes created and initialised ahead of their runs (profile key `pool: N`).

key.py says which pooled container a run may take (everything the container
was made of must be what this run would make); store.py is the on-disk
index of ready and claimed containers, claimed atomically; fill.py makes
them; reap.py removes the idle, the stale and the abandoned ones.
"""
