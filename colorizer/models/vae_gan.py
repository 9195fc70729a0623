"""A conditional VAE-GAN colorizer, after "Image Coloring Using Machine Learning": a latent code z
says which of the plausible colorings of a photo to draw.

- The colorizer p(ab | L, z) is our U-Net on EfficientNet-Lite0 features of the lightness
  (BackboneUNet, with its hint inputs and scene context), given z as a per-channel scale and
  shift (FiLM) of the deepest features and of the decoder's last features.
- The posterior encoder q(z | L, ab), used only in training, sees the true colors (a small
  convolutional net over L, a and b, pooled over the photo) beside the pooled deepest L
  features, and gives the mean and log-variance of a Gaussian over z; z is drawn from it with the
  re-parameterization z = mu + sigma * eps, so the colorizer learns to reconstruct the photo's
  own colors from its z.
- The KL term pulls q(z | L, ab) towards the prior N(0, I); so at colorization time z ~ N(0, I)
  gives different plausible colorings, and z = 0 (the prior's mean) the one `colorize` returns.
- The adversarial term (our patch discriminator, colorizer/models/patch_discriminator.py) is
  applied in training to colorings decoded from prior samples, so that a random z looks like a
  real photo's colors, not only the reconstructions.

The losses are put together in colorizer/train.py (TrainConfig.kl_weight, adv_weight). Both z
projections start at zero, so a VAE-GAN initialized from a plain checkpoint starts out as that
model, whatever z is; the posterior encoder starts random, so that z says something about the
colors from the first step and the projections learn to use it.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..lab import AB_NORM
from .backbone_unet import BackboneUNet
from .heads import ConvBNReLU

DEFAULT_LATENT = 8


@dataclass
class VAEOutput:
    """One training forward pass: the head's output for a posterior sample, its KL divergence to
    the prior (per photo, summed over z), and the output for a prior sample (None unless asked)."""
    out: torch.Tensor
    kl: torch.Tensor
    prior_out: torch.Tensor | None = None


class PosteriorEncoder(nn.Module):
    """(L, ab at the crop's resolution, pooled deepest L features) -> mean and log-variance of z."""

    def __init__(self, deep_channels: int, latent: int, channels=(24, 48, 96, 128), hidden: int = 256):
        super().__init__()
        convs, cin = [], 3
        for c in channels:
            convs.append(ConvBNReLU(cin, c, stride=2))
            cin = c
        self.convs = nn.Sequential(*convs)
        self.mlp = nn.Sequential(nn.Linear(cin + deep_channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2 * latent))
        # the last layer keeps its random start: z carries something of the colors from the first
        # step, so the (zero) projections of z get a gradient that is not noise

    def forward(self, l_norm, ab, deep):
        x = torch.cat([l_norm, (ab / AB_NORM).to(l_norm)], 1)
        color = self.convs(x).float().mean(dim=(2, 3))
        mu, logvar = self.mlp(torch.cat([color, deep.float().mean(dim=(2, 3))], 1).float()).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 6.0)


class LatentPath(nn.Module):
    """The posterior encoder and the two zero-initialized FiLM projections of z."""

    def __init__(self, deep_channels: int, out_channels: int, latent: int):
        super().__init__()
        self.latent = latent
        self.posterior = PosteriorEncoder(deep_channels, latent)
        self.to_deep = nn.Linear(latent, 2 * deep_channels)
        self.to_out = nn.Linear(latent, 2 * out_channels)
        for proj in (self.to_deep, self.to_out):
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    @staticmethod
    def film(x: torch.Tensor, proj: nn.Linear, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = proj(z.float()).to(x.dtype).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class VAEGAN(BackboneUNet):
    """forward(l_norm, hints=None, z=None): the head's output for latent z (N x latent; None is
    z = 0, the prior's mean). training_forward(l_norm, ab, hints, prior=True) adds the posterior."""

    def __init__(self, latent: int = DEFAULT_LATENT, **kwargs):
        super().__init__(**kwargs)
        if int(latent) < 1:
            raise ValueError(f"the latent code needs at least 1 dimension, got {latent}")
        self.latent_dim = int(latent)
        self.latent = LatentPath(self.encoder.channels[-1], self.decoder.out_channels, self.latent_dim)

    def zeros(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n, self.latent_dim, device=like.device, dtype=torch.float32)

    def _decode_z(self, feats, z):
        g = self.context.summary(feats[-1]) if self.context is not None else None
        deep = feats[-1]
        if g is not None:
            deep = self.context.film_deep(deep, g)
        deep = self.latent.film(deep, self.latent.to_deep, z)
        x = self.decoder(list(feats[:-1]) + [deep])
        if g is not None:
            x = self.context.film_out(x, g)
        return self.latent.film(x, self.latent.to_out, z)

    def forward(self, l_norm, hints=None, z=None):
        hints = hints if self.accepts_hints else None
        if z is None:
            z = self.zeros(len(l_norm), l_norm)
        elif tuple(z.shape) != (len(l_norm), self.latent_dim):
            raise ValueError(f"z must be N x {self.latent_dim}, got {tuple(z.shape)}")
        return self._finish(self._decode_z(self._encode(l_norm, hints), z.to(l_norm.device)), hints)

    def forward_latents(self, l_norm, zs, hints=None) -> list:
        """The head's output for each of several latent codes (K x latent), one photo batch:
        the encoder runs once, the decoder once per code."""
        hints = hints if self.accepts_hints else None
        feats = self._encode(l_norm, hints)
        n = len(l_norm)
        return [self._finish(self._decode_z(feats, z.to(l_norm.device).expand(n, -1)), hints)
                for z in zs[:, None]]

    def training_forward(self, l_norm, ab, hints=None, prior: bool = False) -> VAEOutput:
        """A posterior sample z ~ q(z | L, ab) (re-parameterized) decoded, its KL to N(0, I), and
        with prior=True also a prior sample z ~ N(0, I) decoded from the same encoder features."""
        hints = hints if self.accepts_hints else None
        feats = self._encode(l_norm, hints)
        mu, logvar = self.latent.posterior(l_norm, ab, feats[-1])
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        out = self._finish(self._decode_z(feats, z), hints)
        prior_out = None
        if prior:
            prior_out = self._finish(self._decode_z(feats, torch.randn_like(mu)), hints)
        return VAEOutput(out, kl, prior_out)

    def sample_z(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latent codes from the prior N(0, I)."""
        return torch.randn(n, self.latent_dim, generator=generator)
