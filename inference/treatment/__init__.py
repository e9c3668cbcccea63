"""Treatment response of a fitted twin: what each drug, lesion or stimulation does to it.

- effects (:func:`predict_interventions`): every posterior draw under every intervention and
  dose, summarised as regional GBC, mean FC, band powers and the distance to a target FC;
- posterior summaries of them (:func:`change_summary`, :func:`prob_improves`,
  :func:`ranking`, :func:`predictions_to_inference_data`);
- observed checks (:func:`check_observed`): a prediction against an observed on-drug session,
  and the patient's efficacy posterior;
- simulated checks (:func:`simulate_interventions`): the nonlinear noisy twin under each
  intervention, for the FCD the linear statistics cannot give;
- the ``vbt predict`` job (:func:`load_predict_config`, :func:`load_twin`,
  :func:`predict_run_folder`), its report and figures.
"""

from ._config import InterventionSpec as InterventionSpec
from ._config import ObservedSpec as ObservedSpec
from ._config import PredictConfig as PredictConfig
from ._config import load_predict_config as load_predict_config
from ._config import parse_predict as parse_predict
from ._effects import Predictions as Predictions
from ._effects import gbc_from_z as gbc_from_z
from ._effects import predict_interventions as predict_interventions
from ._job import predict_run_folder as predict_run_folder
from ._observed import ObservedCheck as ObservedCheck
from ._observed import check_observed as check_observed
from ._plots import plot_dose_response as plot_dose_response
from ._plots import plot_fc_change as plot_fc_change
from ._plots import plot_fcd_predictions as plot_fcd_predictions
from ._plots import plot_observed_check as plot_observed_check
from ._plots import plot_ranking as plot_ranking
from ._plots import prediction_figures as prediction_figures
from ._simulated import SimulatedPredictions as SimulatedPredictions
from ._simulated import simulate_interventions as simulate_interventions
from ._summary import change_summary as change_summary
from ._summary import dose_index as dose_index
from ._summary import predictions_to_inference_data as predictions_to_inference_data
from ._summary import prob_improves as prob_improves
from ._summary import ranking as ranking
from ._twin import FittedTwin as FittedTwin
from ._twin import build_interventions as build_interventions
from ._twin import load_twin as load_twin
