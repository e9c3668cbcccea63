"""Experiment configuration files (TOML) loaded into frozen, validated objects.

A configuration is read and checked completely *before* anything is compiled:
:func:`load_config` parses the file and checks every key, type, unit and name that does not need
the connectome's data; :func:`build_experiment` then loads the connectome (and EEG gain), checks
the per-region lengths against its N and builds the simulator objects. Every error is a
:class:`~vbt_jax.ConfigError` whose message starts with the file path and names the section and
key at fault, e.g. ``configs/x.toml: [simulation] dt must be a positive number (ms), got 'abc'``.

Units: time in ms, lengths in mm, speeds in mm/ms (= m/s).

Schema (``*`` = required; anything not listed is an error naming the key and the allowed ones)::

    description = "free text"          # optional, top level

    [simulation]
    dt*         = 0.1        # integration step [ms], > 0
    duration*   = 60000.0    # simulated time [ms], a whole number of steps
    seed        = 0          # int in [0, 2**32): PRNG key for noise and the random initial state
    solver      = "heun"     # "heun" | "euler"
    dtype       = "float32"  # "float32" | "float64" (float64 runs inside jax.enable_x64)
    speed       = 3.0        # conduction speed [mm/ms]; delays = rint(lengths / speed / dt)
    rng         = "hash"     # noise generator: "hash" (fast) | "threefry"
    transient   = 0.0        # [ms] initial time left out of the FC and of the figures'
                             # z-scores and spectra (the data are saved in full)

    [connectome]
    source         = "dk84"  # "dk84" (shipped HCP DK 84 regions) | "tvb:76" (tvb-data; 66, 68,
                             # 76, 96, 192) | a path (TVB .zip, BIDS relmat folder/file, .npy,
                             # .csv, .tsv, .txt); relative paths are relative to this file
    lengths        = "L.npy" # tract lengths [mm] for a plain matrix source (default: no delays)
    normalise      = "max"   # "max" | "log" | "rowsum" | "none"
    remove_diagonal = false  # zero the self-connections (applied first)
    symmetrise     = false   # (W + W.T) / 2 for weights and lengths (applied second;
                             # normalise comes last)
    allow_isolated = ...     # accept regions without connections; default true for "tvb:*"
                             # (connectivity_76/_192 hold placeholders), false otherwise

    [model]
    name* = "mpr"            # "mpr" | "jansen_rit" | "wong_wang" | "hopf"
    fic   = false            # wong_wang only: set J_i per region by feedback inhibition control
    fic_rate = 3.0           # (models.wong_wang.with_fic) so every E pool fires at fic_rate [Hz]
    [model.parameters]       # field name of the model class -> number or list of N numbers
    eta = -4.6
    [model.initial_state]    # optional; every state variable -> number or list of N numbers
    r = 0.1                  # (absent: drawn uniformly from the model's state_ranges)
    V = -2.0

    [coupling]               # optional (absent: the model's default coupling)
    kind = "linear"          # "linear" (G, b) | "difference" (G) | "sigmoidal" (G, cmin, cmax,
                             # midpoint, r); absent: the model's default coupling instance
    G    = 0.5               # the other keys override the coupling's fields (number or list
                             # of N)

    [noise]                  # optional (absent, or all nsig 0: deterministic)
    nsig = 0.01              # TVB convention (increment sqrt(2 nsig dt) z): one number, a list
                             # with one number per state variable, or a table {state = number}
                             # (states left out get 0)

    [monitors]               # at least one of (defaults: period 1 ms, tr 720 ms, step 1 ms):
    raw  = { period = 1.0, variables = ["r", "V"] }   # instantaneous states every period [ms]
    tavg = { period = 1.0, variables = ["r"] }        # window means; variables default: all
    bold = { tr = 720.0, step = 1.0, scale = 1.0 }    # BOLD every tr [ms] (Balloon-Windkessel
                                                      # stepped every `step` ms)
    eeg  = { period = 1.0, gain = "tvb62", average_reference = true }
                             # gain: "tvb62" (tvb-data's 62 x 76 gain, needs "tvb:76") or a
                             # path to an (M, N) .npy; period [ms]

Every monitor period (and the BOLD ``tr`` and ``step``) must be a whole number of ``dt``, ``tr``
a whole number of ``step``, and ``duration`` must give at least one sample of every monitor.
"""

from ._build import Experiment as Experiment
from ._build import build_experiment as build_experiment
from ._load import find_config as find_config
from ._load import load_config as load_config
from ._load import parse_config as parse_config
from ._schema import COUPLING_KINDS as COUPLING_KINDS
from ._schema import MODEL_REGISTRY as MODEL_REGISTRY
from ._schema import BoldConfig as BoldConfig
from ._schema import ConnectomeConfig as ConnectomeConfig
from ._schema import CouplingConfig as CouplingConfig
from ._schema import EEGConfig as EEGConfig
from ._schema import ExperimentConfig as ExperimentConfig
from ._schema import ModelConfig as ModelConfig
from ._schema import MonitorsConfig as MonitorsConfig
from ._schema import NoiseConfig as NoiseConfig
from ._schema import RawConfig as RawConfig
from ._schema import SimulationConfig as SimulationConfig
from ._schema import available_models as available_models
from ._schema import model_class as model_class
