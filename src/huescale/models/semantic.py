"""A colorizer that starts from semantics: an ImageNet-pretrained encoder, a U-Net decoder, colornet's heads.

The shipped ``colornet`` learns everything from ~8 k small photographs, from random weights: it fits the
photographs it was trained on and paints the rest beige. Systems that colour photographs of any origin
start from an encoder that already knows what a parrot or a tomato is: ChromaGAN and DDColor
(Kang et al. 2023) from ImageNet-pretrained VGG16 / ConvNeXt encoders, Iizuka et al. 2016 with a
classification branch. Here:

- the 64 px L, turned into the gray sRGB image it is (a* = b* = 0, :mod:`huescale.color`) and resized
  to the encoder's working size (``size``, 128 by default: EfficientNet-Lite0 at 128 px runs ~47
  photographs/s on 2 AVX2 cores, 15 at its native 224);
- an ImageNet-pretrained encoder by name (:mod:`huescale.models.backbones`: EfficientNet-Lite0/1/2 from
  PyPI, any timm backbone), its features at strides 4, 8, 16 and 32;
- a U-Net decoder from the coarsest feature up (upsample, concatenate the next finer feature, two
  conv-BN-ReLU), with the global-context branch of Iizuka et al. 2016 on the coarsest feature, and the L
  image itself as the last skip (edges at the head's resolution);
- colornet's colour-classification + regression heads and calibrated decoding
  (:class:`huescale.models.colornet.ABClassColorizer`; Zhang, Isola & Efros 2016) at half the input size.

Training (:mod:`huescale.training.recipe`) first fits the decoder with the encoder frozen, from encoder features
cached once per photograph (:mod:`huescale.data.features`; ``forward(L, features=[...])``), then
fine-tunes the whole network at a lower encoder learning rate. The encoder's batch-norm statistics stay
frozen in both (``train()`` keeps them in eval mode): small batches would only blur ImageNet's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from huescale.abbins import GRID
from huescale.color import lab_normalized_to_rgb
from huescale.models import backbones
from huescale.models.colornet import ABClassColorizer, _convs
from huescale.models.registry import register

# timm feature indices of EfficientNet (and most CNNs): strides 4, 8, 16, 32
OUT_INDICES = (1, 2, 3, 4)


@register("semantic")
class SemanticColorizer(ABClassColorizer):
    """ImageNet-pretrained encoder, U-Net decoder, ab-class heads (Kang et al. 2023; Zhang, Isola & Efros 2016).

    The encoder as DDColor / ChromaGAN start from one, colour classification heads of Zhang et al. 2016, the global
    branch of Iizuka et al. 2016.

    Input ``N x 1 x H x W`` float normalised L in [-1, 1] (H, W even); output ``N x 2 x H x W`` float32
    normalised ab in [-1, 1]. ``forward(x, return_aux=True)`` returns ``(ab, aux)`` as colornet does
    (``logits`` ``N x Q x H/2 x W/2``, ``reg``, ``bin_centers``, ``bin_weights``).
    ``forward(x, features=feats)`` skips the encoder and decodes the given features (:meth:`encode`'s output
    for the same photographs: the frozen-encoder phase's cache).

    Building the network does **not** load the ImageNet weights (a checkpoint brings its own):
    :meth:`load_pretrained` does, called by the recipe when a phase starts from scratch.

    Args:
        backbone: a backbone name (``efficientnet_lite0``/``1``/``2``, ``timm:<name>``).
        weights: ``imagenet`` or a weight file path (:func:`huescale.models.backbones.pretrained_state`);
            ``none``: no pretrained weights (tests, ablations).
        size: the encoder's working size in px (the 64 px L is resized to ``size x size``; multiple of 32).
        decoder_channels: decoder widths from the coarsest level (stride 32) to the finest (stride 4).
        convs: conv3x3-BN-ReLU per decoder level.
        global_dim: width of the global branch (0: none).
        grid: a*b* bin side in Lab units (10: Q = 261 bins reachable from sRGB).

    Raises:
        ValueError: bad sizes; an odd input size. huescale.models.backbones.BackboneError: an unknown backbone.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", weights: str = "imagenet", size: int = 128,
                 decoder_channels: tuple[int, ...] | list[int] = (192, 128, 96, 64), convs: int = 2,
                 global_dim: int = 256, grid: float = GRID):
        super().__init__()
        if size < 32 or size % 32:
            raise ValueError(f"semantic: size must be a multiple of 32 (>= 32), got {size}")
        if len(decoder_channels) != len(OUT_INDICES) or min(decoder_channels) < 1 or convs < 1:
            raise ValueError(f"semantic: decoder_channels needs {len(OUT_INDICES)} widths >= 1 and convs >= 1, "
                             f"got {decoder_channels}, {convs}")
        self.backbone, self.weights, self.size, self.head_stride = backbone, weights, size, 2
        self.encoder, spec = backbones.create(backbone, OUT_INDICES)
        self.register_buffer("in_mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        chans = list(self.encoder.feature_info.channels())[::-1]  # type: ignore[union-attr,operator]  # timm
        dec = list(decoder_channels)
        self.top = nn.Sequential(nn.Conv2d(chans[0], dec[0], 1, bias=False), nn.BatchNorm2d(dec[0]),
                                 nn.ReLU(inplace=True))
        self.global_mlp: nn.Module | None = None
        if global_dim:
            self.global_mlp = nn.Sequential(nn.Linear(chans[0], global_dim), nn.ReLU(inplace=True),
                                            nn.Linear(global_dim, global_dim), nn.ReLU(inplace=True))
            self.global_fuse = nn.Sequential(nn.Conv2d(dec[0] + global_dim, dec[0], 1, bias=False),
                                             nn.BatchNorm2d(dec[0]), nn.ReLU(inplace=True))
        self.fuse = nn.ModuleList(_convs(dec[i - 1] + chans[i], dec[i], convs) for i in range(1, len(dec)))
        self.l_fuse = _convs(dec[-1] + 1, dec[-1], 1)  # L at the heads' resolution: edges
        self._init_heads(dec[-1], grid)

    @property
    def n_features(self) -> int:
        """How many feature maps :meth:`encode` returns (and ``features=`` takes)."""
        return len(OUT_INDICES)

    def load_pretrained(self) -> int:
        """Load the encoder's ImageNet weights (``weights``); returns the number of tensors loaded, 0 for ``none``.

        Raises:
            huescale.models.backbones.BackboneError: missing package / file, checksum or shape mismatch.
        """
        if self.weights == "none":
            return 0
        return backbones.load_pretrained(self.encoder, self.backbone, self.weights)

    def train(self, mode: bool = True) -> SemanticColorizer:
        """As ``nn.Module.train``, but the encoder's batch-norm layers stay in eval mode (ImageNet statistics)."""
        super().train(mode)
        for m in self.encoder.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features of normalised L ``N x 1 x H x W``: ``N x C_i x size/s_i x size/s_i`` for strides
        ``s_i`` = 4, 8, 16, 32 (finest first), float32 (or the autocast dtype)."""
        # the gray image and its resize in float32 whatever autocast is on: CPU bf16 autocast runs upsampling in
        # bfloat16, and the antialiased resize has no bfloat16 CPU kernel (the default run failed on AVX512-BF16)
        with torch.autocast(x.device.type, enabled=False):
            rgb = lab_normalized_to_rgb(x.float(), torch.zeros_like(x, dtype=torch.float32).expand(-1, 2, -1, -1))
            rgb = F.interpolate(rgb, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                antialias=True)
            rgb = (rgb - self.in_mean) / self.in_std  # type: ignore[operator]  # buffers
        return list(self.encoder(rgb))

    def features(self, x: torch.Tensor, features: list[torch.Tensor] | tuple[torch.Tensor, ...] | None = None,
                 **kwargs) -> torch.Tensor:
        """The decoder's last feature ``N x C x H/2 x W/2`` for normalised L ``x`` (``features``: cached
        :meth:`encode` output of the same photographs, else the encoder runs).

        Raises:
            ValueError: an odd input size, or ``features`` of the wrong count.
        """
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"semantic: input size {tuple(x.shape[-2:])} must be even")
        feats = list(features) if features is not None else self.encode(x)
        if len(feats) != self.n_features:
            raise ValueError(f"semantic: {len(feats)} feature maps given, the encoder makes {self.n_features}")
        feats = feats[::-1]  # coarsest first
        y = self.top(feats[0])
        if self.global_mlp is not None:
            g = self.global_mlp(feats[0].float().mean((2, 3)).to(y.dtype))
            y = self.global_fuse(torch.cat([y, g[:, :, None, None].expand(-1, -1, *y.shape[-2:]).to(y.dtype)], 1))
        for fuse, skip in zip(self.fuse, feats[1:]):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = fuse(torch.cat([y, skip], 1))
        head = (x.shape[-2] // 2, x.shape[-1] // 2)
        if y.shape[-2:] != head:
            y = F.interpolate(y, size=head, mode="bilinear", align_corners=False)
        return self.l_fuse(torch.cat([y, F.avg_pool2d(x, 2).to(y.dtype)], 1))
