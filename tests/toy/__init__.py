"""A toy sweep's run function for the experiment-store tests (tests/test_store.py)."""
