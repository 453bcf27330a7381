"""Which signals a run handles, by name: shared by the run (runtime/outcome.py)
and the fork server's client (forkserver/client.py), which forwards exactly
these and imports nothing but `os` and the C core of `signal`."""

from __future__ import annotations

# Every signal whose default action ends the process (signal(7)): each stops the sandbox and is
# recorded as an interruption, instead of ending Vectra Guard with its run left `started`.
ENDING = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGIO",
          "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGSTKFLT", "SIGTRAP")
# A terminal's resize: the run passes the new size on to the sandbox.
RESIZE = "SIGWINCH"
# What a terminal's job control sends to stop its foreground job (termios(3)); the run takes the default: it stops.
STOPPING = ("SIGTSTP", "SIGTTIN", "SIGTTOU")
