"""Asynchronous SGD with a parameter server: the server's rules, the deterministic simulator, the Ray actors and sweeps, Hogwild!."""
