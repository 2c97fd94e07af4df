"""Batch-norm recalibration: exact running statistics of the active subnet over fixed batches.

Shared BN statistics in a supernet are a blend over every subnet trained; each subnet needs its
own. ``recalibrate`` runs K cached batches in training mode with the momentum of batch k set to
1 - 1/k, so after the last batch every running mean is exactly the average of the K batch means
and every running variance the average of the K (biased) batch variances, as in once-for-all.
Batch 1 has momentum 0, so whatever was in the buffers before is overwritten: no reset pass.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np
import paddle
import paddle.nn as nn

from .data import as_float32


def bn_layers(model: nn.Layer) -> list[nn.Layer]:
    return [m for m in model.sublayers() if isinstance(m, nn.layer.norm._BatchNormBase)]


def calibration_batches(images: np.ndarray, batch_size: int) -> list[paddle.Tensor]:
    """Cut fixed calibration images into tensors once; every subnet reuses them."""
    return [paddle.to_tensor(images[i: i + batch_size]) for i in range(0, len(images), batch_size)]


def calibration_set(train, batches: int, batch_size: int, seed: int = 0) -> list[paddle.Tensor]:
    """K fixed batches of un-augmented training images from a train source (empty when K = 0)."""
    from .data import calibration_images

    if not batches:
        return []
    return calibration_batches(calibration_images(train, batches * batch_size, seed), batch_size)


@paddle.no_grad()
def recalibrate(model: nn.Layer, batches: Iterable[paddle.Tensor]) -> None:
    """Set the BN running statistics of the active (sub)net to exact averages over ``batches``."""
    layers = bn_layers(model)
    saved = [m._momentum for m in layers]
    was_training = model.training
    model.train()
    try:
        with warnings.catch_warnings():
            # Paddle's BatchNorm warns on every train-mode forward; here train mode is the point.
            warnings.filterwarnings("ignore", message="When training, we now always track")
            for k, x in enumerate(batches, 1):
                for m in layers:
                    m._momentum = 1.0 - 1.0 / k
                model(as_float32(x))
    finally:
        for m, mom in zip(layers, saved):
            m._momentum = mom
        model.train(was_training)


@contextmanager
def preserved_bn_stats(model: nn.Layer) -> Iterator[None]:
    """Restore every BN running statistic on exit (evaluate without disturbing training state)."""
    layers = bn_layers(model)
    saved = [(m._mean.clone(), m._variance.clone()) for m in layers]
    try:
        yield
    finally:
        with paddle.no_grad():
            for m, (mean, var) in zip(layers, saved):
                m._mean.set_value(mean)
                m._variance.set_value(var)
