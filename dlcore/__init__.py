"""dlcore: one vectorized forward/backward core for NumPy, CuPy and any Array-API namespace.

The course's notation throughout: ``X: (n_x, m)``, ``Y: (1, m)``, ``W[l]: (n[l], n[l-1])``,
``b[l]: (n[l], 1)``, ``Z[l], A[l], dZ[l], dA[l]: (n[l], m)``.
"""

# first: a quiet Ctrl-C while the CLI imports; dlcore.backends found in a source checkout
from dlcore import _cli_guard, _source_tree  # noqa: F401
from dlcore._version import __version__
from dlcore.activations import ACTIVATIONS, Activation, get_activation, leaky_relu, softmax
from dlcore.backends import BackendError, get_backend
from dlcore.data import flatten_images
from dlcore.distributed import DataParallel
from dlcore.heads import BinaryCrossEntropy, CategoricalCrossEntropy, Head, MeanSquaredError, head_for
from dlcore.initializers import INITIALIZERS, initialize_parameters
from dlcore.labels import one_hot
from dlcore.layers import LayerCache, layer_backward, layer_forward, linear_backward
from dlcore.metrics import accuracy, confusion_matrix, r2_score
from dlcore.model import Network
from dlcore.ops import Ops, ops_of
from dlcore.optimizers import OPTIMIZERS, Adam, GradientDescent, Momentum, Optimizer, RMSprop, get_optimizer
from dlcore.precision import MixedPrecision
from dlcore.propagation import backward, cost, forward, predict, predict_proba, train_step, update
from dlcore.training import History, Plan, TrainingDiverged, train

__all__ = [
    "__version__",
    "ACTIVATIONS",
    "BackendError",
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "DataParallel",
    "Head",
    "MeanSquaredError",
    "MixedPrecision",
    "Ops",
    "Plan",
    "head_for",
    "ops_of",
    "r2_score",
    "train",
    "INITIALIZERS",
    "OPTIMIZERS",
    "Activation",
    "Adam",
    "GradientDescent",
    "History",
    "LayerCache",
    "Momentum",
    "Network",
    "Optimizer",
    "RMSprop",
    "TrainingDiverged",
    "accuracy",
    "backward",
    "confusion_matrix",
    "cost",
    "flatten_images",
    "forward",
    "get_activation",
    "get_backend",
    "get_optimizer",
    "initialize_parameters",
    "layer_backward",
    "layer_forward",
    "leaky_relu",
    "linear_backward",
    "one_hot",
    "predict",
    "predict_proba",
    "softmax",
    "train_step",
    "update",
]
