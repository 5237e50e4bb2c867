"""Asynchronous SGD with a parameter server (the "cat network" setting)."""
