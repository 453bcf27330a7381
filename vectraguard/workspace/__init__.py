"""Reviewed workspaces: a sandbox's writes to the workspace land in a layer
of their own (overlay mode), and reach the real tree only through `apply`.

Rooms: `baseline` (what the tree was when the session started), `layer`
(the overlay mount and its size cap, rootful or through `podman unshare`),
`harvest` (the overlay's upper directory read into a change set),
`changeset` (the stored change set: entries and content blobs), `store`
(where layers live, their state), `protected` (paths held back from apply),
`apply` (the only code that writes sandbox output into a user's tree),
`diff` (what a person reads before applying).
"""
