"""inference: Bayesian fitting of vbt_jax twins with NumPyro.

Priors built from the models' declared ranges (global and partially pooled, map-informed
regional parameters), forward maps (analytic linearised Hopf statistics or simulations),
likelihoods for FC, FCD, amplitude and band powers, NUTS and SVI engines with resumable
checkpoints, ArviZ output (NetCDF), summaries and figures, and simulation-based calibration.
"""

from ._arviz import group_names as group_names
from ._engines import FitResult as FitResult
from ._engines import make_guide as make_guide
from ._engines import model_sites as model_sites
from ._engines import run_nuts as run_nuts
from ._engines import run_svi as run_svi
from ._forward import HopfLinear as HopfLinear
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
from ._predict import Predictions as Predictions
from ._predict import change_summary as change_summary
from ._predict import dose_index as dose_index
from ._predict import predict_interventions as predict_interventions
from ._predict import predictions_to_inference_data as predictions_to_inference_data
from ._predict import prob_improves as prob_improves
from ._predict import ranking as ranking
from ._predict_check import ObservedCheck as ObservedCheck
from ._predict_check import check_observed as check_observed
from ._predict_run import FittedTwin as FittedTwin
from ._predict_run import load_predict_config as load_predict_config
from ._predict_run import load_twin as load_twin
from ._predict_run import predict_run_folder as predict_run_folder
from ._predict_sim import SimulatedPredictions as SimulatedPredictions
from ._predict_sim import simulate_interventions as simulate_interventions
from ._priors import Global as Global
from ._priors import Regional as Regional
from ._priors import default_prior as default_prior
from ._sbc import coverage as coverage
from ._sbc import run_sbc as run_sbc
from ._sbc import sbc_ranks as sbc_ranks
from ._sbc import uniformity_pvalue as uniformity_pvalue
from ._trial import TrialDesign as TrialDesign
from ._trial import run_virtual_trial as run_virtual_trial
from ._trial import simulate_cohort as simulate_cohort
