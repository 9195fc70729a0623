"""ResNet-18 encoder (He et al., CVPR 2016: BasicBlock, [2, 2, 2, 2]) on one gray channel.

Parameter and buffer names are exactly those of torchvision's `resnet18` state dict without `fc`
(conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0 / .1, ...), with conv1 taking 1 input
channel, so ImageNet weights in torchvision's format (e.g. resnet18-f37072fd.pth, which a user
supplies) load with load_torchvision_file(); their RGB conv1 is folded into the gray one as
described in torchvision_weights.py (the constant part goes into bn1.running_mean).

forward(l_norm) returns 5 feature maps, shallowest first:
    stride 2:  relu(bn1(conv1))      64 channels
    stride 4:  layer1 (after maxpool) 64
    stride 8:  layer2                128
    stride 16: layer3                256
    stride 32: layer4                512

torch only; reads a weights file only when given its path (load_torchvision_file).
"""
from __future__ import annotations

from torch import nn

from .torchvision_weights import (as_state_dict, check_state_dict, first_conv_rgb, fold_rgb_conv,
                                  gray_input, load_state_dict_file)

ARCH = "resnet18"
EXAMPLE_FILE = "resnet18-f37072fd.pth"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs and an identity (or 1x1 conv-BN 'downsample') shortcut."""

    batchnorm_pairs = (("conv1", "bn1"), ("conv2", "bn2"))  # folded for inference

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class ResNet18Encoder(nn.Module):
    """Gray input -> feature maps at strides 2, 4, 8, 16, 32 (shallowest first)."""

    channels = [64, 64, 128, 256, 512]
    strides = [2, 4, 8, 16, 32]
    batchnorm_pairs = (("conv1", "bn1"),)  # folded for inference

    def __init__(self):
        super().__init__()
        self.channels = list(ResNet18Encoder.channels)
        self.strides = list(ResNet18Encoder.strides)
        self.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (cout, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2)), 1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))
            cin = cout
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, l_norm):
        x = self.relu(self.bn1(self.conv1(gray_input(l_norm))))
        feats = [x]
        x = self.maxpool(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats

    def load_torchvision_state_dict(self, sd) -> None:
        """Load a torchvision resnet18 state dict (RGB conv1 64x3x7x7; fc.* optional, dropped)."""
        sd = as_state_dict(sd, ARCH, EXAMPLE_FILE)
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
        w_gray, offset = fold_rgb_conv(first_conv_rgb(sd, "conv1.weight", self, ARCH, EXAMPLE_FILE))
        sd["conv1.weight"] = w_gray
        sd = check_state_dict(self, sd, ARCH, EXAMPLE_FILE)
        # the gray conv1 gives the RGB one minus `offset` (per channel): shift bn1's mean with it
        sd["bn1.running_mean"] = sd["bn1.running_mean"].to(offset.dtype) - offset
        self.load_state_dict(sd, strict=True)

    def load_torchvision_file(self, path) -> None:
        """Load ImageNet weights from a torchvision resnet18 file, e.g. resnet18-f37072fd.pth."""
        self.load_torchvision_state_dict(load_state_dict_file(path, ARCH, EXAMPLE_FILE))
