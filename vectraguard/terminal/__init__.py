"""Terminal safety: what text and bytes from a sandbox may do to the user's terminal.

Everything a sandboxed program wrote (its output, file names, recorded
argv) is attacker-controlled. Three rooms, one concern:

- `escape`: text shown by our own commands (`logs show`, `changes`, `diff`,
  tables) with every control character made visible;
- `sequences`: a streaming filter over the bytes of a live session, which
  keeps the escape sequences a policy allows and drops the rest;
- `relay`: the sink that puts that filter between a sandbox and the
  terminals it writes to, and gives our own messages a fresh, reset line.
"""
