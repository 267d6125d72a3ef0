"""Health checkers (not implemented yet: see issue 7)."""
