"""Make a loaded network faster for inference on a CPU, without changing what it computes.

- BatchNorm folding: in eval mode a BatchNorm right after a convolution is a per-channel scale
  and shift, which folds into the convolution's weights and bias (torch.nn.utils.fusion). Pairs
  are found in nn.Sequential containers (Conv2d followed by BatchNorm2d) and in modules that name
  theirs in a `batchnorm_pairs` attribute ((conv attribute, BatchNorm attribute), ...); each
  folded BatchNorm becomes an nn.Identity.
- channels_last memory layout: PyTorch's CPU kernels for depthwise and 1x1 convolutions (the
  bulk of EfficientNet) are much faster with it; Colorizer feeds its input in the layout the
  model's `input_layout` names.

Only for a model that is not trained any further: the folded network has no BatchNorm left to
train. `colorizer.load_colorizer` applies both to the networks it loads.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _foldable(conv, bn) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_mean is not None)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution into it (model in eval mode).
    Returns how many were folded."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (call .eval() first)")
    folded = 0
    for module in list(model.modules()):  # a fixed list: folding replaces submodules
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if _foldable(module[i], module[i + 1]):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
                    folded += 1
        for conv_name, bn_name in getattr(module, "batchnorm_pairs", ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if _foldable(conv, bn):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
                folded += 1
    return folded


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """Eval mode, BatchNorm folded, channels_last layout (in place; returns the model). The
    model's `input_layout` says in which layout to feed it (Colorizer reads it)."""
    model.eval()
    fold_batchnorm(model)
    model.input_layout = torch.channels_last
    return model.to(memory_format=torch.channels_last)
