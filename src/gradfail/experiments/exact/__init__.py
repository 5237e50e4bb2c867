"""Hardness of training: tiny networks trained to a certified global optimum."""
