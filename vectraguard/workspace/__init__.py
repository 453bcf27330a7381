"""Reviewed workspaces: a sandbox's writes to the workspace land in a layer
of their own (overlay mode), and reach the real tree only through `apply`.

Rooms: `modes` (the small interface the run uses: overlay, and what rw
still checks), `session` (one overlay session from before create to the
kept change set, recovery of killed runs), `layer` + `kernel` (the capped
tmpfs and the overlay mount, rootful over an id-mapped lower) and `helper`
(the same under `podman unshare`, rootless), `baseline` (what the tree was
when the session started), `harvest` (the overlay's upper directory read
into a change set), `changeset` (the stored entries and content blobs),
`store` (where layers live, their state, what is protected in a session),
`protected` (the pattern language of filesystem.protected), `gitguard`
(what git would read or run: its configuration's files, planted
repositories, forged objects, refs moved to commits that change protected
paths), `beneath` (no-follow resolution beneath the workspace root),
`apply` (the only code that writes sandbox output into a user's tree),
`diff` (what a person reads before applying).
"""
