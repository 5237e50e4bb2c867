"""Numerical pieces shared by the experiments: the fast Walsh–Hadamard transform and the statistics of claims (intervals, tests)."""
