"""Judging commands before they run: the shell reader, the rules, the classifier."""
