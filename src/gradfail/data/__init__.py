"""Synthetic data generators, one module a problem. Nothing is downloaded."""
