"""ColorNet: a U-Net colorizer with a global-context branch and classification + regression heads.

The body is the pix2pix U-Net (Isola et al. 2017) made deep enough that its bottleneck sees the whole
64 px image (depth 4, two convs a level: receptive field ~140 px), with the global-feature branch of
Iizuka, Simo-Serra & Ishikawa 2016 ("Let there be Color!"): the bottleneck is average-pooled, passed
through a two-layer MLP and fused back into every bottleneck position, so the colour of a patch can
depend on what the whole photograph shows. Two heads read the last decoder feature:

- ``logits``: a distribution over the :class:`~huescale.abbins.ABBins` a*b* bins per pixel (Zhang, Isola
  & Efros 2016), trained by the ``ab_ce`` loss (rebalanced soft cross-entropy);
- ``reg``: normalised ab by tanh (the pix2pix regression), trained by ``reg_l1``.

Both heads run at ``1 / head_stride`` of the input size (chroma is low-frequency; L carries the detail)
and the decoded ab is upsampled bilinearly: at stride 2 a step costs 2.4x less than full-size logits.

Decoding (what ``forward`` returns) is set by buffers, so a checkpoint carries it and it can be calibrated
on validation data after training (:mod:`huescale.training.calibrate`):

- ``annealed``: ``gain * annealed_mean(logits, T)`` (Zhang et al. eq. 5);
- ``regression``: ``gain * reg``;
- ``blend``: ``gain * (alpha * annealed_mean(logits, T) + (1 - alpha) * reg)``,

all clamped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from huescale.abbins import ANNEALED_T, GRID, ABBins
from huescale.models.registry import register

DECODES = ("annealed", "regression", "blend")  # append only: checkpoints store the index


def _convs(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ABClassColorizer(nn.Module):
    """The colour-classification + regression heads and the calibrated decoding of the ``colornet`` family.

    A subclass builds its body, then calls :meth:`_init_heads` with the channels of its last feature, and
    implements :meth:`features` (``N x 1 x H x W`` normalised L -> ``N x C x H/s x W/s``, ``s`` =
    ``head_stride``). ``forward`` then has the colorizer contract: ``N x 2 x H x W`` float32 normalised ab in
    [-1, 1]; ``forward(x, return_aux=True)`` also returns ``aux`` (``logits``, ``reg``, ``bin_centers``,
    ``bin_weights``) for the ``ab_ce`` / ``reg_l1`` losses. Keyword arguments of ``forward`` beyond
    ``return_aux`` go to :meth:`features` (e.g. cached encoder features).
    """

    has_aux = True
    head_stride: int
    decode_mode: torch.Tensor
    decode_T: torch.Tensor
    decode_gain: torch.Tensor
    decode_alpha: torch.Tensor

    def _init_heads(self, c: int, grid: float) -> None:
        self.bins = ABBins(grid)
        self.reg_head = nn.Conv2d(c, 2, 1)
        self.cls_head = nn.Conv2d(c, self.bins.n_bins, 1)
        self.register_buffer("decode_mode", torch.tensor(0))  # index into DECODES (saved with the weights)
        self._mode = DECODES[0]  # its Python copy, read by forward (no data-dependent branch: exports, compiles)
        self.register_buffer("decode_T", torch.tensor(ANNEALED_T))
        self.register_buffer("decode_gain", torch.tensor(1.0))
        self.register_buffer("decode_alpha", torch.tensor(1.0))

    def features(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """The last feature map the heads read, ``N x C x H/s x W/s``."""
        raise NotImplementedError

    @property
    def decoding(self) -> dict[str, float | str]:
        """The decoding ``forward`` applies: ``{"mode", "T", "gain", "alpha"}``."""
        return {"mode": self._mode, "T": float(self.decode_T), "gain": float(self.decode_gain),
                "alpha": float(self.decode_alpha)}

    def set_decoding(self, mode: str, T: float = ANNEALED_T, gain: float = 1.0, alpha: float = 1.0) -> None:
        """Set the decoding of ``forward`` (stored in buffers, so saved with the weights).

        Raises:
            ValueError: an unknown mode, T <= 0 or gain <= 0.
        """
        if mode not in DECODES or T <= 0 or gain <= 0:
            raise ValueError(f"colornet decoding: mode in {DECODES}, T > 0, gain > 0; got {mode}, {T}, {gain}")
        self.decode_mode.fill_(DECODES.index(mode))
        self._mode = mode
        self.decode_T.fill_(T)
        self.decode_gain.fill_(gain)
        self.decode_alpha.fill_(alpha)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "decode_mode" in state_dict:
            self._mode = DECODES[int(state_dict[prefix + "decode_mode"])]

    def heads(self, x: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        """The raw head outputs ``{"logits", "reg"}`` at ``1 / head_stride`` of the input size (``kwargs``: see
        :meth:`features`)."""
        x = self.features(x, **kwargs)
        return {"logits": self.cls_head(x), "reg": torch.tanh(self.reg_head(x))}

    def decode(self, aux: dict[str, torch.Tensor], mode: str | None = None, T: float | torch.Tensor | None = None,
               gain: float | torch.Tensor | None = None, alpha: float | torch.Tensor | None = None) -> torch.Tensor:
        """Normalised ab ``N x 2 x H x W`` float32 in [-1, 1] from :meth:`heads`' outputs, with the stored
        decoding or the one given (calibration tries several on the same outputs)."""
        mode = mode or self._mode
        T = self.decode_T if T is None else T
        gain = self.decode_gain if gain is None else gain
        alpha = self.decode_alpha if alpha is None else alpha
        if mode == "regression":
            ab = aux["reg"].float()
        else:
            ab = self.bins.annealed_mean(aux["logits"], T)
            if mode == "blend":
                ab = alpha * ab + (1 - alpha) * aux["reg"].float()
        if self.head_stride > 1:
            ab = F.interpolate(ab, scale_factor=self.head_stride, mode="bilinear", align_corners=False)
        return (gain * ab).clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor, return_aux: bool = False, **kwargs):
        aux = self.heads(x, **kwargs)
        ab = self.decode(aux)
        if not return_aux:
            return ab
        return ab, {**aux, "bin_centers": self.bins.centers, "bin_weights": self.bins.weights}

@register("colornet")
class ColorNet(ABClassColorizer):
    """ab-classification U-Net colorizer with a global branch (Zhang, Isola & Efros 2016; Iizuka et al. 2016).

    Two heads: ab-class logits and an ab regression.

    Input ``N x 1 x H x W`` float normalised L in [-1, 1]; output ``N x 2 x H x W`` float32 normalised ab in
    [-1, 1] (the colorizer contract every pipeline, metric and export relies on). H and W must be multiples of
    ``2**depth``. ``forward(x, return_aux=True)`` returns ``(ab, aux)`` with ``aux["logits"]``
    (``N x Q x H/s x W/s``), ``aux["reg"]`` (``N x 2 x H/s x W/s``), and the bins' ``aux["bin_centers"]`` (``Q x 2``)
    and ``aux["bin_weights"]`` (``Q``) for the ``ab_ce`` loss (``s`` = ``head_stride``).

    Args:
        in_channels, out_channels: 1 and 2 (L in, ab out); other values are refused.
        depth: encoder levels (4: the bottleneck sees a whole 64 px image).
        base_channels: channels of the first level, doubled per level up to ``max_channels``.
        convs: conv3x3-BN-ReLU per level.
        max_channels: channel cap.
        global_dim: width of the global branch (0: none).
        head_stride: 1, 2 or 4: the heads' resolution divisor.
        grid: a*b* bin side in Lab units (10: Q = 261 bins reachable from sRGB).

    Raises:
        ValueError: bad sizes at construction; an input size that is not a multiple of ``2**depth``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, depth: int = 4, base_channels: int = 32,
                 convs: int = 2, max_channels: int = 192, global_dim: int = 256, head_stride: int = 2,
                 grid: float = GRID):
        super().__init__()
        if in_channels != 1 or out_channels != 2:
            raise ValueError("colornet maps L (1 channel) to ab (2 channels)")
        if depth < 1 or base_channels < 1 or convs < 1:
            raise ValueError(f"colornet: depth, base_channels and convs must be >= 1, got {depth}, "
                             f"{base_channels}, {convs}")
        if head_stride not in (1, 2, 4) or head_stride > 2**depth:
            raise ValueError(f"colornet: head_stride must be 1, 2 or 4 (and <= 2**depth), got {head_stride}")
        self.depth, self.head_stride = depth, head_stride
        chans = [min(base_channels * 2**i, max_channels) for i in range(depth)]
        self.down = nn.ModuleList()
        c = 1
        for ch in chans:
            self.down.append(_convs(c, ch, convs))
            c = ch
        self.pool = nn.MaxPool2d(2)
        c_bot = min(c * 2, max_channels)
        self.bottleneck = _convs(c, c_bot, convs)
        self.global_mlp: nn.Module | None = None
        if global_dim:
            self.global_mlp = nn.Sequential(nn.Linear(c_bot, global_dim), nn.ReLU(inplace=True),
                                            nn.Linear(global_dim, global_dim), nn.ReLU(inplace=True))
            self.global_fuse = nn.Sequential(nn.Conv2d(c_bot + global_dim, c_bot, 1, bias=False),
                                             nn.BatchNorm2d(c_bot), nn.ReLU(inplace=True))
        self.up, self.fuse = nn.ModuleList(), nn.ModuleList()
        c = c_bot
        for ch in list(reversed(chans))[: depth - (head_stride.bit_length() - 1)]:  # the finest levels skipped
            self.up.append(nn.Sequential(nn.ConvTranspose2d(c, ch, 2, stride=2, bias=False), nn.BatchNorm2d(ch),
                                         nn.ReLU(inplace=True)))
            self.fuse.append(_convs(2 * ch, ch, convs))
            c = ch
        self._init_heads(c, grid)

    def features(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """The U-Net's last decoder feature at ``1 / head_stride`` of the input size."""
        m = 2**self.depth
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"colornet: input size {tuple(x.shape[-2:])} must be a multiple of {m}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        if self.global_mlp is not None:
            g = self.global_mlp(x.mean((2, 3)))
            x = self.global_fuse(torch.cat([x, g[:, :, None, None].expand(-1, -1, *x.shape[-2:])], 1))
        for up, fuse, skip in zip(self.up, self.fuse, list(reversed(skips))[: len(self.up)]):
            x = fuse(torch.cat([up(x), skip], 1))
        return x

