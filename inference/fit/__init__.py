"""``vbt fit``: a twin fitted to a person's data from a TOML config, written to a run folder.

The config (:func:`load_fit_config`), the twin and data it describes (:func:`setup_fit`), the
engine run (:func:`run_engine`), the checks of the fit (:func:`fc_quality` on training and
held-out edges, :func:`simulate_check` with the nonlinear simulator at posterior draws) and the
run folder (:func:`fit_run_folder`). The command itself is registered with ``vbt`` through the
``vbt.commands`` entry point (``inference.fit._cli:COMMAND``).
"""

from ._checks import fc_quality as fc_quality
from ._checks import simulate_check as simulate_check
from ._config import FitConfig as FitConfig
from ._config import PriorSpec as PriorSpec
from ._config import load_fit_config as load_fit_config
from ._config import parse_fit as parse_fit
from ._job import fit_run_folder as fit_run_folder
from ._setup import FitSetup as FitSetup
from ._setup import resolve_map as resolve_map
from ._setup import run_engine as run_engine
from ._setup import setup_fit as setup_fit
