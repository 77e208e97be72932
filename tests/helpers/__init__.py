"""Code shared by several test modules: reference implementations and checkpoint writers.

Test modules import from here (or use fixtures from a conftest), never from each other.
"""
