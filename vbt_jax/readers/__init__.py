"""Readers: files and shipped data to validated vbt_jax objects, one module per format.

- ``_tvb.py``: TVB connectivity zips (``load_tvb_zip``), the connectomes tvb-data ships
  (``tvb_connectivity``) and its default subject's EEG gain (``load_tvb_eeg_gain``);
- ``_bids.py``: BIDS-connectivity dense relmats with their sidecars (``load_bids_relmat``);
- ``_matrix.py``: plain weight/length matrices (``load_matrix``), and ``load_connectome``,
  which picks one of the three connectome readers from the path;
- ``_datasets.py``: the shipped DK-84 HCP connectome, its empirical FC and an FCD reference;
- ``_timeseries.py``: :class:`RegionTimeSeries` from a table on disk
  (``load_region_timeseries``), its preprocessing, ``check_against_connectome``;
- ``_nifti.py``: a 4-D BOLD NIfTI averaged over a 3-D atlas (``load_nifti_regions``);
- ``_fc.py``: a precomputed FC matrix (:class:`ObservedFC`, ``load_fc_matrix``);
- ``_band_powers.py``: band-power tables (:class:`BandPowers`, ``load_band_powers``);
- ``_sensors.py``: EEG/MEG recordings (:class:`SensorTimeSeries`,
  ``load_sensor_timeseries``), their band powers and ``check_gain``;
- ``_maps.py``: brain maps (:class:`BrainMap`): the shipped receptor, MEG and ENIGMA maps, a
  user's regional table (``load_map``), node strength.

Every connectome reader returns a :class:`vbt_jax.Connectome` checked by
:func:`vbt_jax.validate`. All of them are NumPy, run once at the edge; text tables go through one
parser (``_table.py``), region labels through ``vbt_jax._labels``, and errors are the
:class:`vbt_jax.DataError` family naming the file.
"""

from ._band_powers import BandPowers as BandPowers
from ._band_powers import load_band_powers as load_band_powers
from ._bids import load_bids_relmat as load_bids_relmat
from ._datasets import dk84 as dk84
from ._datasets import dk84_empirical_fc as dk84_empirical_fc
from ._datasets import dk84_fcd_reference as dk84_fcd_reference
from ._fc import ObservedFC as ObservedFC
from ._fc import load_fc_matrix as load_fc_matrix
from ._maps import ENIGMA_DISORDERS as ENIGMA_DISORDERS
from ._maps import MEG_BANDS as MEG_BANDS
from ._maps import RECEPTOR_TRACERS as RECEPTOR_TRACERS
from ._maps import BrainMap as BrainMap
from ._maps import enigma_map as enigma_map
from ._maps import load_map as load_map
from ._maps import meg_band_power as meg_band_power
from ._maps import node_strength_map as node_strength_map
from ._maps import receptor_density as receptor_density
from ._maps import receptor_map as receptor_map
from ._matrix import load_connectome as load_connectome
from ._matrix import load_matrix as load_matrix
from ._nifti import load_nifti_regions as load_nifti_regions
from ._sensors import SensorTimeSeries as SensorTimeSeries
from ._sensors import check_gain as check_gain
from ._sensors import load_sensor_timeseries as load_sensor_timeseries
from ._sensors import sensor_band_powers as sensor_band_powers
from ._timeseries import RegionTimeSeries as RegionTimeSeries
from ._timeseries import check_against_connectome as check_against_connectome
from ._timeseries import load_region_timeseries as load_region_timeseries
from ._tvb import load_tvb_eeg_gain as load_tvb_eeg_gain
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
    "load_tvb_eeg_gain",
    "load_tvb_zip",
    "meg_band_power",
    "node_strength_map",
    "receptor_density",
    "receptor_map",
    "sensor_band_powers",
    "tvb_connectivity",
]
