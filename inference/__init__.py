"""Bayesian fitting of vbt_jax models with NumPyro (priors, likelihoods, NUTS/SVI, diagnostics).

Not yet implemented: this package is filled by the twin-fitting work that builds on the
simulator core in ``vbt_jax``.
"""
