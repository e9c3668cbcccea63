"""vbt_jax: whole-brain neural mass simulation in JAX for virtual brain twins.

The forward model only: models, connectomes, delays, noise, integration, monitors (raw,
temporal average, BOLD, EEG) and data features. Bayesian fitting lives in the separate
``inference`` package.
"""

from . import features as features
from . import interventions as interventions
from . import models as models
from . import monitors as monitors
from . import readers as readers
from ._balloon import BalloonParams as BalloonParams
from ._balloon import bold_from_drive as bold_from_drive
from ._connectome import Connectome as Connectome
from ._connectome import validate as validate
from ._coupling import AbstractCoupling as AbstractCoupling
from ._coupling import Difference as Difference
from ._coupling import Linear as Linear
from ._coupling import Sigmoidal as Sigmoidal
from ._errors import ArgumentError as ArgumentError
from ._errors import CheckpointError as CheckpointError
from ._errors import ConfigError as ConfigError
from ._errors import ConnectomeError as ConnectomeError
from ._errors import DataError as DataError
from ._errors import DataWarning as DataWarning
from ._errors import DivergenceError as DivergenceError
from ._errors import LabelError as LabelError
from ._errors import ShapeError as ShapeError
from ._errors import SimulationError as SimulationError
from ._errors import VbtError as VbtError
from ._integrate import SimState as SimState
from ._integrate import Solution as Solution
from ._integrate import simulate as simulate
from ._labels import DK_CORTEX as DK_CORTEX
from ._labels import DK_SUBCORTEX as DK_SUBCORTEX
from ._labels import dk_key as dk_key
from ._labels import match_labels as match_labels
from ._leadfield import average_reference as average_reference
from ._leadfield import project as project
from ._leadfield import region_gain_from_vertices as region_gain_from_vertices
from ._linear import LinearisedNetwork as LinearisedNetwork
from ._linear import fixed_point as fixed_point
from ._linear import hopf_band_power as hopf_band_power
from ._linear import hopf_covariance_symmetric as hopf_covariance_symmetric
from ._linear import hopf_fc as hopf_fc
from ._linear import hopf_fc_symmetric as hopf_fc_symmetric
from ._linear import hopf_jacobian as hopf_jacobian
from ._linear import hopf_spectrum as hopf_spectrum
from ._linear import is_stable as is_stable
from ._linear import linear_fc as linear_fc
from ._linear import linearise as linearise
from ._linear import solve_lyapunov as solve_lyapunov
from ._linear import stationary_covariance as stationary_covariance
from ._noise import Additive as Additive
from ._solvers import EulerMaruyama as EulerMaruyama
from ._solvers import Heun as Heun
from ._stability import StepStability as StepStability
from ._stability import delay_steps as delay_steps
from ._stability import network_jacobian as network_jacobian
from ._stability import step_stability as step_stability
from .readers import ENIGMA_DISORDERS as ENIGMA_DISORDERS
from .readers import MEG_BANDS as MEG_BANDS
from .readers import RECEPTOR_TRACERS as RECEPTOR_TRACERS
from .readers import BandPowers as BandPowers
from .readers import BrainMap as BrainMap
from .readers import ObservedFC as ObservedFC
from .readers import RegionTimeSeries as RegionTimeSeries
from .readers import SensorTimeSeries as SensorTimeSeries
from .readers import check_against_connectome as check_against_connectome
from .readers import check_gain as check_gain
from .readers import dk84 as dk84
from .readers import dk84_empirical_fc as dk84_empirical_fc
from .readers import dk84_fcd_reference as dk84_fcd_reference
from .readers import enigma_map as enigma_map
from .readers import load_band_powers as load_band_powers
from .readers import load_bids_relmat as load_bids_relmat
from .readers import load_connectome as load_connectome
from .readers import load_fc_matrix as load_fc_matrix
from .readers import load_map as load_map
from .readers import load_matrix as load_matrix
from .readers import load_nifti_regions as load_nifti_regions
from .readers import load_region_timeseries as load_region_timeseries
from .readers import load_sensor_timeseries as load_sensor_timeseries
from .readers import load_tvb_eeg_gain as load_tvb_eeg_gain
from .readers import load_tvb_zip as load_tvb_zip
from .readers import meg_band_power as meg_band_power
from .readers import node_strength_map as node_strength_map
from .readers import receptor_density as receptor_density
from .readers import receptor_map as receptor_map
from .readers import sensor_band_powers as sensor_band_powers
from .readers import tvb_connectivity as tvb_connectivity

__version__ = "0.1.0"
