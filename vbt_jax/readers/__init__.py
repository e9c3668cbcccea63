"""Readers: files and shipped data to validated vbt_jax objects, one module per format.

- connectomes (:class:`vbt_jax.Connectome`): TVB connectivity zips (``load_tvb_zip``,
  ``tvb_connectivity``), BIDS-connectivity relmats (``load_bids_relmat``), plain matrices
  (``load_matrix``), and ``load_connectome``, which picks one of them from the path;
- shipped data: the DK-84 HCP connectome, its empirical FC and FCD reference (``dk84``...);
- regional time series (:class:`RegionTimeSeries`): tables on disk
  (``load_region_timeseries``) and NIfTI BOLD averaged over an atlas (``load_nifti_regions``);
- observed data: FC matrices (``load_fc_matrix``), band-power tables (``load_band_powers``),
  sensor recordings (``load_sensor_timeseries``);
- brain maps (:class:`BrainMap`): the shipped receptor, MEG and ENIGMA maps and a user's
  regional table (``load_map``).

All of them are NumPy, run once at the edge, and share one table parser (``_table.py``) and
the error classes of :mod:`vbt_jax` (``DataError`` and its subclasses).
"""

from ._bids import load_bids_relmat as load_bids_relmat
from ._datasets import dk84 as dk84
from ._datasets import dk84_empirical_fc as dk84_empirical_fc
from ._datasets import dk84_fcd_reference as dk84_fcd_reference
from ._fc import BandPowers as BandPowers
from ._fc import ObservedFC as ObservedFC
from ._fc import SensorTimeSeries as SensorTimeSeries
from ._fc import check_gain as check_gain
from ._fc import load_band_powers as load_band_powers
from ._fc import load_fc_matrix as load_fc_matrix
from ._fc import load_sensor_timeseries as load_sensor_timeseries
from ._fc import sensor_band_powers as sensor_band_powers
from ._maps import ENIGMA_DISORDERS as ENIGMA_DISORDERS
from ._maps import MEG_BANDS as MEG_BANDS
from ._maps import RECEPTOR_TRACERS as RECEPTOR_TRACERS
from ._maps import BrainMap as BrainMap
from ._maps import enigma_map as enigma_map
from ._maps import load_map as load_map
from ._maps import match_labels as match_labels
from ._maps import meg_band_power as meg_band_power
from ._maps import node_strength_map as node_strength_map
from ._maps import receptor_density as receptor_density
from ._maps import receptor_map as receptor_map
from ._matrix import load_connectome as load_connectome
from ._matrix import load_matrix as load_matrix
from ._timeseries import RegionTimeSeries as RegionTimeSeries
from ._timeseries import check_against_connectome as check_against_connectome
from ._timeseries import load_nifti_regions as load_nifti_regions
from ._timeseries import load_region_timeseries as load_region_timeseries
from ._tvb import load_tvb_zip as load_tvb_zip
from ._tvb import tvb_connectivity as tvb_connectivity

__all__ = [
    "BandPowers",
    "BrainMap",
    "ENIGMA_DISORDERS",
    "MEG_BANDS",
    "ObservedFC",
    "RECEPTOR_TRACERS",
    "RegionTimeSeries",
    "SensorTimeSeries",
    "check_against_connectome",
    "check_gain",
    "dk84",
    "dk84_empirical_fc",
    "dk84_fcd_reference",
    "enigma_map",
    "load_band_powers",
    "load_bids_relmat",
    "load_connectome",
    "load_fc_matrix",
    "load_map",
    "load_matrix",
    "load_nifti_regions",
    "load_region_timeseries",
    "load_sensor_timeseries",
    "load_tvb_zip",
    "match_labels",
    "meg_band_power",
    "node_strength_map",
    "receptor_density",
    "receptor_map",
    "sensor_band_powers",
    "tvb_connectivity",
]
