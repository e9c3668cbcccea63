"""Data features of simulated and empirical signals: FC, FCD, spectra (pure JAX functions)."""

from ._fc import FISHER_CLIP as FISHER_CLIP
from ._fc import fc as fc
from ._fc import fc_correlation as fc_correlation
from ._fc import fisher_z as fisher_z
from ._fc import pearson as pearson
from ._fc import upper_r as upper_r
from ._fcd import (
    fcd as fcd,
)
from ._fcd import (
    fcd_histogram as fcd_histogram,
)
from ._fcd import (
    fcd_values as fcd_values,
)
from ._fcd import (
    ks_distance as ks_distance,
)
from ._fcd import ks_to_histogram as ks_to_histogram
from ._spectra import (
    DEFAULT_BANDS as DEFAULT_BANDS,
)
from ._spectra import (
    alpha_peak_frequency as alpha_peak_frequency,
)
from ._spectra import (
    band_powers as band_powers,
)
from ._spectra import (
    relative_band_powers as relative_band_powers,
)
from ._spectra import (
    welch_psd as welch_psd,
)
