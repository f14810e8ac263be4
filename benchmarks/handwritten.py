"""The bar to beat on the CPU: a training step written by hand in NumPy for one network shape, with every
(n, m) buffer allocated once, in-place activations and ``out=`` everywhere.

The same math as :func:`dlcore.train_step` (binary cross-entropy from the logits, the cost computed
every step, gradient descent): forward ``Z = W A + b``, ``A = g(Z)``; ``dZ[L] = (sigmoid(Z[L]) - Y) lr / m``;
``dW = dZ A_prev^T``, ``db = sum(dZ)``, ``dA_prev = W^T dZ`` (a broadcast multiply for a one-row W),
``dZ = dA g'(Z)``; ``W -= dW``, ``b -= db``. Only for NumPy arrays, tanh or ReLU hidden layers and one
sigmoid output unit: what the scaling series needs, nothing general.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class HandWrittenStep:
    """``step()`` trains ``params`` (NumPy arrays, updated in place) one step on X, Y; returns J."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, params: dict[str, np.ndarray], hidden: str, lr: float):
        self.X, self.Y, self.lr, self.hidden = X, Y, lr, hidden
        self.L = len(params) // 2
        self.W = [params[f"W{l}"] for l in range(1, self.L + 1)]
        self.b = [params[f"b{l}"] for l in range(1, self.L + 1)]
        m, dt = X.shape[1], X.dtype
        self.Z = [np.empty((W.shape[0], m), dt) for W in self.W]
        self.A = [X] + [np.empty((W.shape[0], m), dt) for W in self.W[:-1]]  # A[l] feeds layer l + 1
        self.dA = [np.empty((W.shape[1], m), dt) for W in self.W]  # dA_prev of each layer
        self.dZ = [np.empty((W.shape[0], m), dt) for W in self.W]
        self.dW = [np.empty_like(W) for W in self.W]
        self.db = [np.empty_like(b) for b in self.b]
        self.mask = [np.empty((W.shape[0], m), dt) for W in self.W[:-1]]
        self.AL = np.empty((1, m), dt)
        self.loss = np.empty((1, m), dt)

    def step(self) -> float:
        L, Z, A = self.L, self.Z, self.A
        for l in range(L):  # forward
            np.matmul(self.W[l], A[l], out=Z[l])
            Z[l] += self.b[l]
            if l < L - 1:
                if self.hidden == "tanh":
                    np.tanh(Z[l], out=A[l + 1])
                else:
                    np.maximum(Z[l], 0, out=A[l + 1])
        ZL, AL, loss, Y = Z[-1], self.AL, self.loss, self.Y
        m = ZL.shape[1]
        np.maximum(ZL, 0, out=loss)  # J = sum(max(Z, 0) - Y Z + log1p(exp(-|Z|))) / m
        np.multiply(Y, ZL, out=AL)
        loss -= AL
        np.abs(ZL, out=AL)
        np.negative(AL, out=AL)
        np.exp(AL, out=AL)
        np.log1p(AL, out=AL)
        loss += AL
        J = float(np.add.reduce(loss, axis=None)) / m
        np.multiply(ZL, 0.5, out=AL)  # sigmoid = (1 + tanh(z / 2)) / 2
        np.tanh(AL, out=AL)
        AL *= 0.5
        AL += 0.5
        dZ = self.dZ[-1]
        np.subtract(AL, Y, out=dZ)
        dZ *= self.lr / m
        for l in range(L - 1, -1, -1):  # backward and update
            dZ = self.dZ[l]
            np.matmul(dZ, A[l].T, out=self.dW[l])
            np.add.reduce(dZ, axis=1, keepdims=True, out=self.db[l])
            if l > 0:
                dA = self.dA[l]
                W = self.W[l]
                if W.shape[0] == 1:
                    np.multiply(W.T, dZ, out=dA)
                else:
                    np.matmul(W.T, dZ, out=dA)
                mask, dZ_prev = self.mask[l - 1], self.dZ[l - 1]
                if self.hidden == "tanh":  # g' = 1 - A^2
                    np.multiply(A[l], A[l], out=mask)
                    np.subtract(1.0, mask, out=mask)
                else:  # g' = (Z > 0)
                    np.greater(Z[l - 1], 0, out=mask)
                np.multiply(dA, mask, out=dZ_prev)
            self.W[l] -= self.dW[l]
            self.b[l] -= self.db[l]
        return J


def handwritten_step(
    X: Any, Y: Any, params: dict[str, Any], hidden: str, lr: float
) -> HandWrittenStep | None:
    """The hand-written step for NumPy arrays, ``None`` for any other library."""
    if not all(isinstance(a, np.ndarray) for a in (X, Y, *params.values())):
        return None
    return HandWrittenStep(X, Y, params, hidden, lr)
