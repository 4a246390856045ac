"""Correct solutions of the course assignments written differently from the reference: each must get full marks.

One module per assignment; tests/test_assignments.py grades them in-process, next to the wrong implementations.
"""
