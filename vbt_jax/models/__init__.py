"""Neural mass models, one file each.

``MODELS`` maps the short names used in configuration files to the model classes.
"""

from ._base import AbstractModel as AbstractModel
from ._base import Mechanism as Mechanism
from .hopf import StuartLandau as StuartLandau
from .jansen_rit import JansenRit as JansenRit
from .mpr import MontbrioPazoRoxin as MontbrioPazoRoxin
from .wong_wang import ReducedWongWangExcInh as ReducedWongWangExcInh
from .wong_wang import feedback_inhibition as feedback_inhibition
from .wong_wang import with_fic as with_fic

MODELS: dict[str, type[AbstractModel]] = {
    "mpr": MontbrioPazoRoxin,
    "jansen_rit": JansenRit,
    "wong_wang": ReducedWongWangExcInh,
    "hopf": StuartLandau,
}
