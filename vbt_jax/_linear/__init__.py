"""Linearised network dynamics: the analytic stationary covariance and functional connectivity.

Around a stable fixed point a network model with additive noise behaves as the linear SDE
``dX = A X dt + sqrt(2 nsig) dW`` (``A`` the Jacobian of the network's drift). Its stationary
covariance ``P`` solves the continuous Lyapunov equation ``A P + P A^T + diag(2 nsig) = 0``,
which gives the model's functional connectivity without simulating, as a smooth function of the
parameters (a likelihood that NUTS can differentiate).

**Conduction delays are ignored in this approximation**: the Jacobian is that of the
zero-delay network. With delays the linearised system is a delay differential equation whose
covariance is not given by a Lyapunov equation.

For the Stuart-Landau (Hopf) network with symmetric weights and one common ``omega`` the
covariance and the power spectrum have closed forms (:func:`hopf_covariance_symmetric`,
:func:`hopf_fc_symmetric`, :func:`hopf_spectrum`, :func:`hopf_band_power`): one Cholesky
factorisation or one symmetric eigendecomposition of an ``N x N`` matrix instead of a
``2N x 2N`` Lyapunov solve, for the many cheap gradients that NUTS needs.

Everything here is ``jax.numpy`` only and works under ``jit``, ``vmap``, ``grad`` and
``jacfwd``.

Modules: ``_lyapunov`` (the Lyapunov solver and the covariance and FC of any stable drift),
``_hopf`` (the Stuart-Landau Jacobian and its general FC), ``_symmetric`` (the closed forms
for symmetric weights), ``_spectra`` (spectra and band powers) and ``_lapack`` (the one
workaround for a jaxlib bug with batched LAPACK calls on CPU).
"""

from ._hopf import hopf_fc as hopf_fc
from ._hopf import hopf_jacobian as hopf_jacobian
from ._lyapunov import is_stable as is_stable
from ._lyapunov import linear_fc as linear_fc
from ._lyapunov import solve_lyapunov as solve_lyapunov
from ._lyapunov import stationary_covariance as stationary_covariance
from ._network import LinearisedNetwork as LinearisedNetwork
from ._network import fixed_point as fixed_point
from ._network import linearise as linearise
from ._network import network_drift as network_drift
from ._spectra import hopf_band_power as hopf_band_power
from ._spectra import hopf_spectrum as hopf_spectrum
from ._symmetric import hopf_covariance_symmetric as hopf_covariance_symmetric
from ._symmetric import hopf_fc_symmetric as hopf_fc_symmetric
