"""Build and test tooling for the book itself (not imported by chapters)."""
