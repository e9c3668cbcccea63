"""inference: Bayesian fitting of vbt_jax twins with NumPyro.

The core (this namespace): priors built from the models' declared ranges (global and
partially pooled, map-informed regional parameters), forward maps (analytic linearised Hopf
statistics or simulations), likelihoods for FC, FCD, amplitude and band powers, the Twin (one
NumPyro model), engines (NUTS and SVI with resumable checkpoints), ArviZ output (NetCDF,
summaries), simulation-based calibration and fit-quality metrics.

``inference.metrics`` (fit-quality numbers) and ``inference.plots`` (figures of a posterior)
name the core's helper modules.

Subsystems:

- :mod:`inference.fit`: the ``vbt fit`` job (config, data, checks, run folder);
- :mod:`inference.treatment`: predicted and checked treatment response, the ``vbt predict``
  job;
- :mod:`inference.validation`: validation studies with a known ground truth (the virtual
  trial).
"""

from . import engines as engines
from . import fit as fit
from . import metrics as metrics
from . import plots as plots
from . import treatment as treatment
from ._arviz import group_names as group_names
from ._calibration import coverage as coverage
from ._calibration import nuts_many as nuts_many
from ._calibration import run_sbc as run_sbc
from ._calibration import sbc_ranks as sbc_ranks
from ._calibration import uniformity_pvalue as uniformity_pvalue
from ._centring import learn_centring as learn_centring
from ._forward import HopfLinear as HopfLinear
from ._forward import Linearised as Linearised
from ._forward import Simulated as Simulated
from ._likelihoods import FCLikelihood as FCLikelihood
from ._likelihoods import VectorLikelihood as VectorLikelihood
from ._likelihoods import amplitude_likelihood as amplitude_likelihood
from ._likelihoods import band_power_likelihood as band_power_likelihood
from ._likelihoods import fcd_likelihood as fcd_likelihood
from ._likelihoods import fisher_z as fisher_z
from ._model import Twin as Twin
from ._output import load_netcdf as load_netcdf
from ._output import predictive_draws as predictive_draws
from ._output import prior_draws as prior_draws
from ._output import save_netcdf as save_netcdf
from ._output import summarize as summarize
from ._output import to_inference_data as to_inference_data
from ._priors import Global as Global
from ._priors import Regional as Regional
from ._priors import default_prior as default_prior
from .engines import FitResult as FitResult
from .engines import make_guide as make_guide
from .engines import model_sites as model_sites
from .engines import run_nuts as run_nuts
from .engines import run_svi as run_svi
