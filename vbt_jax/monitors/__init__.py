"""Streaming monitors: outputs sampled during the scan, memory independent of the step count."""

from ._base import AbstractMonitor as AbstractMonitor
from .bold import Bold as Bold
from .eeg import EEG as EEG
from .raw import Raw as Raw
from .temporal_average import TemporalAverage as TemporalAverage
