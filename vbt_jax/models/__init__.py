"""Neural mass models, one file each."""

from ._base import AbstractModel as AbstractModel
from .mpr import MontbrioPazoRoxin as MontbrioPazoRoxin
