"""dlcore: one vectorized forward/backward core for NumPy, CuPy and any Array-API namespace.

The course's notation throughout: ``X: (n_x, m)``, ``Y: (1, m)``, ``W[l]: (n[l], n[l-1])``,
``b[l]: (n[l], 1)``, ``Z[l], A[l], dZ[l], dA[l]: (n[l], m)``.
"""

from dlcore._version import __version__ as __version__  # one source, also read by pyproject.toml
from dlcore.activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from dlcore.backends import get_backend
from dlcore.data import flatten_images
from dlcore.initializers import INITIALIZERS, initialize_parameters
from dlcore.layers import LayerCache, layer_backward, layer_forward, linear_backward
from dlcore.model import History, Network, TrainingDiverged
from dlcore.multiclass import confusion_matrix, one_hot, softmax
from dlcore.optimizers import OPTIMIZERS, Adam, GradientDescent, Momentum, Optimizer, RMSprop, get_optimizer
from dlcore.propagation import (
    accuracy,
    backward,
    cost,
    forward,
    predict,
    predict_proba,
    train_step,
    update,
)

__all__ = [
    "ACTIVATIONS",
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
