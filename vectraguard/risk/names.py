"""The names a profile's `risk.decisions` may use besides its rules' ids.

Apart from risk/rules.py so that checking a profile (config/resolved.py, on
every run's path) does not import the rule matcher.
"""

from __future__ import annotations

CLASSES = ("destructive", "network", "privilege", "exfiltration", "opaque")
# Findings about the run rather than its command (see risk/decide.py): ids that
# `risk.decisions` may name although no rule in `risk.rules` has them.
NETWORK_FULL = "network-full"
NETWORK_WIDENED = "network-widened"
NETWORK_PUBLISH = "network-publish"  # ports of the sandbox published on the host (network/publish.py)
# Findings of class `opaque`: the judge could not see what a line will run
# (risk/classify.py), so it cannot be allowed on what it shows.
OPAQUE_RULES = {
    "opaque-command-name": "the command's name is known only when it runs",
    "opaque-eval": "evaluates text known only when it runs (eval, source, sh -c of an expansion)",
    "opaque-input": "a shell or interpreter runs a program read from input that is known only when it runs",
    "opaque-decoded": "a program decoded or transformed on the line is fed to a shell or interpreter",
    "opaque-code": "an inline program runs a command or code it builds when it runs",
    "opaque-loaded": "a variable or option makes a program load code from a file or setting",
}
