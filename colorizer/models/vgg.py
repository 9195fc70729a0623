"""VGG-16 encoder (Simonyan & Zisserman, ICLR 2015: configuration D, no batch norm) on one gray
channel.

The convolutional part keeps torchvision's `vgg16` names: `features.N` with the 13 convs at
N = 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 (ReLUs and max-pools in between hold no
weights); `features.0` takes 1 input channel, and the classifier is not built. ImageNet weights
in torchvision's format (e.g. vgg16-397923af.pth, which a user supplies) load with
load_torchvision_file(); their RGB first conv is folded into the gray one as described in
torchvision_weights.py (the constant part goes into features.0.bias).

forward(l_norm) returns the outputs of the five 2x2 max-pools, shallowest first:
    stride 2:  pool1 (after features.4)   64 channels
    stride 4:  pool2 (features.9)        128
    stride 8:  pool3 (features.16)       256
    stride 16: pool4 (features.23)       512
    stride 32: pool5 (features.30)       512
Each is the max-pool of its block's last ReLU, so every tap has its own convs behind it; the
full-resolution block-1 activations (stride 1) are not exposed.

torch only; reads a weights file only when given its path (load_torchvision_file).
"""
from __future__ import annotations

from torch import nn

from .torchvision_weights import (as_state_dict, check_state_dict, first_conv_rgb, fold_rgb_conv,
                                  gray_input, load_state_dict_file)

ARCH = "vgg16"
EXAMPLE_FILE = "vgg16-397923af.pth"
# configuration D: conv output channels, "M" = 2x2 max-pool
CFG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16Encoder(nn.Module):
    """Gray input -> max-pool outputs at strides 2, 4, 8, 16, 32 (shallowest first)."""

    channels = [64, 128, 256, 512, 512]
    strides = [2, 4, 8, 16, 32]

    def __init__(self):
        super().__init__()
        self.channels = list(VGG16Encoder.channels)
        self.strides = list(VGG16Encoder.strides)
        layers, cin, taps = [], 1, []
        for v in CFG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                taps.append(len(layers) - 1)
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.taps = taps  # indices of the pools in `features`: 4, 9, 16, 23, 30
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, l_norm):
        x = gray_input(l_norm)
        feats, taps = [], set(self.taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                feats.append(x)
        return feats

    def load_torchvision_state_dict(self, sd) -> None:
        """Load a torchvision vgg16 state dict (RGB features.0 64x3x3x3; classifier.* optional,
        dropped)."""
        sd = as_state_dict(sd, ARCH, EXAMPLE_FILE)
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
        w_gray, offset = fold_rgb_conv(first_conv_rgb(sd, "features.0.weight", self, ARCH, EXAMPLE_FILE))
        sd["features.0.weight"] = w_gray
        sd = check_state_dict(self, sd, ARCH, EXAMPLE_FILE)
        # the gray conv gives the RGB one minus `offset` (per channel): add it to the bias
        sd["features.0.bias"] = sd["features.0.bias"].to(offset.dtype) + offset
        self.load_state_dict(sd, strict=True)

    def load_torchvision_file(self, path) -> None:
        """Load ImageNet weights from a torchvision vgg16 file, e.g. vgg16-397923af.pth."""
        self.load_torchvision_state_dict(load_state_dict_file(path, ARCH, EXAMPLE_FILE))
