"""Validation studies: runnable experiments with a known ground truth that test the
package's methods. They are not library API: import them from here, not from ``inference``.

- :mod:`.virtual_trial`: a virtual drug trial on DK-84 (virtual patients drawn from a stated
  population, a drug with a known efficacy, pre/post scans), used to check that treatment
  predictions are calibrated. Its design is described in ``docs/virtual_trial.md``; its
  measured numbers are written by ``benchmarks/virtual_trial.py`` to
  ``benchmarks/results/virtual_trial.json``.
"""

from .virtual_trial import TrialDesign as TrialDesign
from .virtual_trial import run_virtual_trial as run_virtual_trial
from .virtual_trial import simulate_cohort as simulate_cohort
