"""vbt_jax: whole-brain neural mass simulation in JAX for virtual brain twins.

The forward model only: models, connectomes, delays, noise, integration, monitors (raw,
temporal average, BOLD, EEG) and data features. Bayesian fitting lives in the separate
``inference`` package.
"""

from . import features as features
from . import models as models
from . import monitors as monitors
from ._balloon import BalloonParams as BalloonParams
from ._balloon import bold_from_drive as bold_from_drive
from ._connectome import Connectome as Connectome
from ._connectome import load_bids_relmat as load_bids_relmat
from ._connectome import load_connectome as load_connectome
from ._connectome import load_matrix as load_matrix
from ._connectome import load_tvb_zip as load_tvb_zip
from ._connectome import tvb_connectivity as tvb_connectivity
from ._connectome import validate as validate
from ._coupling import AbstractCoupling as AbstractCoupling
from ._coupling import Difference as Difference
from ._coupling import Linear as Linear
from ._coupling import Sigmoidal as Sigmoidal
from ._datasets import dk84 as dk84
from ._datasets import dk84_empirical_fc as dk84_empirical_fc
from ._datasets import dk84_fcd_reference as dk84_fcd_reference
from ._errors import ConfigError as ConfigError
from ._errors import ConnectomeError as ConnectomeError
from ._errors import DivergenceError as DivergenceError
from ._errors import SimulationError as SimulationError
from ._imaging import RegionTimeSeries as RegionTimeSeries
from ._imaging import check_against_connectome as check_against_connectome
from ._imaging import load_nifti_regions as load_nifti_regions
from ._imaging import load_region_timeseries as load_region_timeseries
from ._integrate import SimState as SimState
from ._integrate import Solution as Solution
from ._integrate import simulate as simulate
from ._leadfield import average_reference as average_reference
from ._leadfield import load_tvb_eeg_gain as load_tvb_eeg_gain
from ._leadfield import project as project
from ._leadfield import region_gain_from_vertices as region_gain_from_vertices
from ._linear import hopf_fc as hopf_fc
from ._linear import hopf_jacobian as hopf_jacobian
from ._linear import is_stable as is_stable
from ._linear import linear_fc as linear_fc
from ._linear import solve_lyapunov as solve_lyapunov
from ._linear import stationary_covariance as stationary_covariance
from ._noise import Additive as Additive
from ._solvers import EulerMaruyama as EulerMaruyama
from ._solvers import Heun as Heun

__version__ = "0.1.0"
