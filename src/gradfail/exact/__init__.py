"""Exact training of tiny networks: linear and mixed-integer programs that certify a global optimum.

A single threshold unit is a linear program; two threshold units under an AND (Blum & Rivest
1992) or a handful of ReLUs are mixed-integer programs, one binary per (sample, unit) for the
unit's state. Every program here is solved by HiGHS through `scipy.optimize.milp`. A solve that
stops at its time limit returns the best network found with the solver's proven lower bound and
is marked not certified: a bound is never reported as an optimum.

The certified class is always a box: every first-layer weight and bias in [−B, B] (training is
∃ℝ-complete, so only a bounded class can be certified, Abrahamsen et al. 2021).

`program` builds and solves the (MI)LPs, `threshold` trains threshold units (one unit, the
3-node network), `relu` certifies small ReLU networks."""
