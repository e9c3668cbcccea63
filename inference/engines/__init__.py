"""Samplers and variational fits of a NumPyro model, with checkpoints a killed run resumes from.

NUTS (``numpyro.infer.NUTS``, several chains, optionally warm-started from a short SVI fit) and
SVI with optax (Gaussian autoguides or :class:`AutoHierarchicalFlow`, optionally
importance-resampled), each writing its state to a checkpoint folder as it goes. Each is a
sampler state machine (``_samplers``: ``init``/``update``) run by one driver (``_driver``) that
chunks it, checkpoints it (``_checkpoint``) and shows one progress bar (``_progress``).
"""

from ._elbo import OrderedTraceELBO as OrderedTraceELBO
from ._engines import GUIDES as GUIDES
from ._engines import FitResult as FitResult
from ._engines import make_guide as make_guide
from ._engines import run_nuts as run_nuts
from ._engines import run_svi as run_svi
from ._guides import AutoAffineIAF as AutoAffineIAF
from ._guides import AutoHierarchicalFlow as AutoHierarchicalFlow
from ._sites import model_sites as model_sites
