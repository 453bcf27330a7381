"""Shell completion: the scripts (scripts.py) and the words they ask for (listing.py).

Imported only by `vectraguard completion` (commands/completion.py): nothing
here is on the start-up path of `vectraguard run`.
"""
