"""Typed configuration: the dataclasses ``params.yaml`` is read into, one per section, with their defaults.

Every stage reads only its own section. Reading and checking the file is :mod:`huescale.config_io`
(:func:`~huescale.config_io.load_config`): unknown keys and wrong types fail at start-up with the key's dotted
name, never deep inside a run; wrong values too (:mod:`huescale.validation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huescale.metrics import METRICS


@dataclass
class ImagenetteConfig:
    """The fast.ai Imagenette archive (Frison et al. 2025 trains on Imagenette).

    ``variant`` picks the official archive (``320``: imagenette2-320, ``full``:
    imagenette2, ``160``: imagenette2-160; URLs and md5s in
    ``huescale.data.archive_sources.IMAGENETTE``); a non-empty ``url``/``md5`` overrides it
    (a mirror, or the loopback server of the tests).
    """

    variant: str = "320"  # 320 | full | 160
    url: str = ""  # "" = the official fast.ai URL of the variant
    md5: str = ""  # "" = the official md5 of the variant


@dataclass
class CocoConfig:
    """MS-COCO 2017 image zips (Brescia et al., Singh et al. sample 10k images from train2017)."""

    archives: list[str] = field(default_factory=lambda: ["train2017"])  # train2017 | val2017
    base_url: str = "http://images.cocodataset.org/zips"
    md5: dict[str, str] = field(default_factory=dict)  # per archive; empty = the official md5s


@dataclass
class VocConfig:
    """PASCAL VOC 2012 trainval tar (Brescia et al.); images under ``VOCdevkit/VOC2012/JPEGImages/``."""

    url: str = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
    md5: str = "6cd6e144f989b92b3379bac3b3de84fd"


@dataclass
class HfConfig:
    """A Hugging Face data set: ``datasets.load_dataset(name, config, split=..., streaming=...)``."""

    name: str = ""  # hub name, or a builder: parquet | imagefolder (local data)
    config: str = ""  # the data set's configuration name, "" = default
    data_files: list[str] = field(default_factory=list)  # for name=parquet
    data_dir: str = ""  # for name=imagefolder
    split: str = "train"
    image_column: str = "image"
    streaming: bool = False  # stream and take only the first candidates (large sets)


@dataclass
class HoldoutSourceConfig:
    """``data.test_source``: an explicit test set from another source (e.g. ImageNet-val-style folder).

    Its images all go to the test split; the main source then feeds train/val
    (set ``data.splits.test: 0``). Non-folder sources reuse ``data.<source>``.
    """

    source: str = "none"  # none | folder | imagenette | coco | voc | hf
    folders: list[str] = field(default_factory=list)
    n_images: int = 0  # usable test images to take, 0 = all


@dataclass
class DataConfig:
    """``data:`` section: where images come from and how the pair store is made (docs/architecture.md)."""

    source: str = "imagenette"  # imagenette | coco | voc | hf | folder
    folders: list[str] = field(default_factory=list)
    imagenette: ImagenetteConfig = field(default_factory=ImagenetteConfig)
    coco: CocoConfig = field(default_factory=CocoConfig)
    voc: VocConfig = field(default_factory=VocConfig)
    hf: HfConfig = field(default_factory=HfConfig)
    test_source: HoldoutSourceConfig = field(default_factory=HoldoutSourceConfig)
    split_map: dict[str, str] = field(default_factory=dict)  # key prefix -> fixed split, e.g. {coco/val2017: test}
    fetch_margin: float = 0.1  # coco/hf: fetch n_images * (1 + margin) candidates (room for exclusions)
    cache_dir: str = "~/.cache/huescale"  # env HUESCALE_CACHE overrides
    n_images: int = 1500
    min_images: int = 16
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    hr_size: int = 256
    scale: int = 4
    gray_tolerance: float = 4.0
    small_images: str = "skip"  # skip | upscale (images whose short side < hr_size // scale)
    max_pixels: int = 64_000_000
    shard_size: int = 512
    workers: int = 2
    # held-out photographs that training never reads: set name -> folder (scored by evaluate, never trained on)
    holdout: dict[str, str] = field(default_factory=dict)
    holdout_images: int = 500  # usable images taken from each held-out set (seeded, stable subset)
    max_extract_ratio: float = 200.0  # refuse archives declaring more than this x their size (decompression bombs)
    max_extract_bytes: int = 100_000_000_000  # refuse extracting more than this many bytes from one archive

    @property
    def lr_size(self) -> int:
        """The LR side in pixels: ``hr_size // scale`` (64 for 256 and x4)."""
        return self.hr_size // self.scale


@dataclass
class ModelSpec:
    """A registry name plus its keyword arguments."""

    name: str = "unet"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """``model:`` section: which colorizer, upscaler and discriminator (docs/architecture.md)."""

    colorizer: ModelSpec = field(default_factory=lambda: ModelSpec("unet", {"depth": 3, "base_channels": 32}))
    upscaler: ModelSpec = field(default_factory=lambda: ModelSpec("espcn", {"scale": 4, "residual": True}))
    discriminator: ModelSpec = field(
        default_factory=lambda: ModelSpec("patchgan", {"base_channels": 32, "n_layers": 3}))
    # the joint pipeline's generator, 64 L -> 256 Lab (Frison et al. 2025, Singh et al.; used by the ablation grid)
    joint: ModelSpec = field(default_factory=lambda: ModelSpec("joint", {"base_channels": 32}))


def _pretrain_losses() -> dict[str, float]:
    return {"l1": 1.0}


@dataclass
class OptimConfig:
    """One training phase: epochs, batch size, Adam settings and the generator's losses.

    ``losses`` maps loss names of :mod:`huescale.training.losses` to their weights (``huescale losses``
    lists them); L1 pre-training is ``{l1: 1}`` (Singh et al., ``docs/sources.md``).
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    max_batches: int = 0  # >0 caps batches per epoch (smoke runs)
    lr_schedule: str = "constant"  # constant | cosine (warm-up, then cosine decay to 0 over the phase)
    losses: dict[str, float] = field(default_factory=_pretrain_losses)
    checkpoint_every: int = 50  # steps between mid-epoch resumable states (0: only at epoch ends)


@dataclass
class FinetuneConfig(OptimConfig):
    """``pretrain.finetune``: the second pre-training phase of a colorizer with a pretrained encoder
    (``semantic``): the whole network from the frozen-encoder phase's best weights, the encoder at
    ``encoder_lr_scale`` x ``lr`` (DDColor / ChromaGAN fine-tune their ImageNet encoders; a lower rate keeps
    what ImageNet taught). ``epochs: 0`` skips it; models without an encoder ignore it."""

    epochs: int = 0
    encoder_lr_scale: float = 0.1


@dataclass
class PretrainConfig:
    """``pretrain:`` section: L1 pre-training of the colorizer (Singh et al.) and the x4 upscaler on L
    (Frison et al. 2025); the joint generator's rows of an ablation grid use the colorizer's settings.
    A colorizer with a pretrained encoder trains ``colorizer`` with the encoder frozen (on cached features),
    then ``finetune``."""

    colorizer: OptimConfig = field(default_factory=OptimConfig)
    upscaler: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=15, lr=1e-3))
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def _adversarial_losses() -> dict[str, float]:
    return {"l1": 100.0, "gan": 1.0}


@dataclass
class TrainConfig:
    """``train:`` section: the adversarial phase (pix2pix as Brescia et al. and Singh et al. train it:
    LSGAN, lambda_L1 = 100, Adam 2e-4, betas (0.5, 0.999)).

    ``losses`` maps loss names to weights; ``gan`` (required, > 0) is the adversarial term
    lambda_GAN, the others the reconstruction terms, e.g. ``{l1: 100, gan: 1, vgg16_conv7: 10}``.
    """

    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    max_batches: int = 0
    lr_schedule: str = "constant"  # constant | cosine
    losses: dict[str, float] = field(default_factory=_adversarial_losses)
    checkpoint_every: int = 50  # steps between mid-epoch resumable states (0: only at epoch ends)
    gan_mode: str = "lsgan"  # vanilla | lsgan | hinge: the GAN loss of D and of the gan term
    vgg_weights: str = ""  # VGG weights file for the vgg* losses; "" = torchvision's cache
    d_conditional: bool = True  # D sees condition ++ output (pix2pix); false: output only (SRGAN)
    init: str = "pretrained"  # pretrained (Singh et al. row 7) | scratch (random generator, rows 1-6)
    resume: bool = True
    collapse_steps: int = 200  # D loss below collapse_threshold this many steps -> warning
    collapse_threshold: float = 1e-3


@dataclass
class CalibrateConfig:
    """``calibrate:`` section: how a colorizer with several decodings (``colornet``) picks one after training.

    On up to ``images`` photographs of the validation split every candidate decoding (annealed-mean
    temperatures, regression gains, a blend; :mod:`huescale.training.calibrate`) is scored; the one with the lowest
    CIEDE2000 among those whose colourfulness is between ``min_colourfulness`` and ``max_colourfulness`` x the
    photographs' wins (the most colourful one under the ceiling if none is). The floor is the target's 0.75;
    1,000 validation photographs (256 before) make the choice steady: on the default model 256 of them put every
    decoding's colourfulness ~0.03 lower and its CIEDE2000 ratio ~0.035 lower than 1,000 did (docs/colour.md).
    """

    min_colourfulness: float = 0.75
    max_colourfulness: float = 1.25  # ceiling: garish decodings (e.g. an untrained head) never qualify
    images: int = 1000


def _all_metrics() -> list[str]:  # every metric of the table, in its order (huescale.metrics.METRICS)

    return list(METRICS)


@dataclass
class EvaluateConfig:
    """``evaluate:`` section: metrics on the test split (docs/architecture.md)."""

    epsilon: float = 0.05
    metrics: list[str] = field(default_factory=_all_metrics)  # the metric table's names (huescale.metrics)
    fid: bool = True
    fid_batch_size: int = 32
    fid_weights: str = ""  # path of pt_inception-2015-12-05-6726825d.pth; "" = the torch hub cache
    fid_cache: str = "~/.cache/huescale/fid"  # real-set statistics cached by content hash; "" = off
    grid_rows: int = 8
    holdout_rows: int = 6  # images per held-out set shown in the report (the first ones of its seeded subset)
    batch_size: int = 32


def _benchmark_sets() -> dict[str, str]:  # names of huescale.data.benchmarks (fetched once into the cache)
    return {"Set5": "Set5", "Set14": "Set14", "BSD100": "BSD100"}


def _benchmark_lr() -> dict[str, str]:
    return {"Set5": "Set5/LRx4", "Set14": "Set14/LRx4"}


@dataclass
class BenchmarkConfig:
    """``benchmark:`` section: the x4 SR benchmark (Set5/Set14/BSD100 protocol, any HR folder).

    ``sets`` maps a set name to a folder of HR images or to a name of the benchmark
    registry (``Set5``, ``Set14``, ``BSD100``, ``Urban100``: :mod:`huescale.data.benchmarks`,
    downloaded once, md5-pinned); a missing folder or a set that cannot be fetched is
    skipped and reported. ``lr_check`` maps a set name to its provided MATLAB-bicubic LR
    images (a folder, or ``Set5/LRx4``...), which our bicubic must reproduce within one gray level.
    ``archive_url`` / ``archive_md5`` name a mirror of the registry's archive and its md5 ("" = EDSR's
    ``benchmark.tar`` and its published md5; ``HUESCALE_BENCHMARK_URL`` also sets the URL).
    """

    sets: dict[str, str] = field(default_factory=_benchmark_sets)
    lr_check: dict[str, str] = field(default_factory=_benchmark_lr)
    archive_url: str = ""
    archive_md5: str = ""
    samples: int = 2  # images per set shown as zoomed crops in reports/benchmark.html


@dataclass
class AblationConfig:
    """``ablation:`` section: set by ``huescale ablate GRID --dvc`` for each row's DVC experiment
    (``dvc exp run -S ablation.grid=... -S ablation.row=i``); ``row: -1`` makes the ``ablate_row`` stage a no-op."""

    grid: str = ""
    row: int = -1


@dataclass
class TrackingConfig:
    """``tracking:`` section: MLflow (docs/architecture.md)."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "huescale"


@dataclass
class RuntimeConfig:
    """``runtime:`` section: device and loader settings."""

    device: str = "auto"  # auto | cpu | cuda
    num_workers: int = 0
    threads: int = 0  # torch CPU threads, 0 = torch default
    amp: str = "auto"  # auto: bf16 autocast on GPUs and on CPUs with AMX/AVX512-BF16, fp32 elsewhere | bf16 | off
    channels_last: bool = False  # NHWC tensors for the conv nets (with bf16: faster on CPUs and GPUs)
    compile: bool = False  # torch.compile the training forward passes


@dataclass
class Config:
    """The whole ``params.yaml``."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    calibrate: CalibrateConfig = field(default_factory=CalibrateConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
