"""Published numbers the reports compare against, each with its source.

Singh et al., Table 7: colorization results of the
ablations on 5k ImageNet validation images and 2k MS-COCO images, at the
authors' full protocol (8k COCO training images, 50 epochs, batch 16).
Columns: FID (lower is better), epsilon-accuracy at 5 % in percent, MAE in
8-bit levels, PSNR in dB; FPS from Table 6.
"""

SINGH_TABLE7 = {
    "source": "Singh et al., Table 7 (and FPS from Table 6)",
    "rows": [
        # model, dataset, FID, eps-acc %, MAE, PSNR, FPS
        ("U-Net + L1", "ImageNet", 16.75, 32.98, 16.00, 21.56, 28),
        ("U-Net + L1", "MS-COCO", 32.29, 31.97, 15.14, 21.72, 28),
        ("U-Net + Perceptual", "ImageNet", 17.94, 30.03, 16.52, 21.21, 28),
        ("U-Net + Perceptual", "MS-COCO", 35.66, 31.13, 15.74, 21.36, 28),
        ("U-Net + Perceptual + L1", "ImageNet", 16.66, 32.56, 16.04, 21.54, 28),
        ("U-Net + Perceptual + L1", "MS-COCO", 29.50, 35.39, 14.43, 22.15, 28),
        ("Residual Generator + L1", "ImageNet", 25.82, 9.98, 23.66, 18.61, 17),
        ("Residual Generator + L1", "MS-COCO", 42.26, 32.58, 16.42, 21.01, 17),
        ("Residual U-Net + L1", "ImageNet", 16.82, 30.32, 17.41, 20.94, 23),
        ("Residual U-Net + L1", "MS-COCO", 29.43, 32.92, 15.15, 21.55, 23),
        ("Residual U-Net + L1 (Upsampling)", "ImageNet", 44.05, 5.48, 24.62, 18.31, 21),
        ("Residual U-Net + L1 (Upsampling)", "MS-COCO", 70.73, 5.57, 24.21, 18.33, 21),
        ("Pre-trained U-Net + L1", "ImageNet", 15.84, 43.36, 13.01, 23.68, 28),
        ("Pre-trained U-Net + L1", "MS-COCO", 31.69, 47.18, 11.50, 24.19, 28),
    ],
}

# Brescia et al. reports SSIM of single chained 64 gray -> 256 colour
# outputs (figures 4.1-4.8): 0.615, 0.537, 0.268, 0.246, 0.556, 0.554.
BRESCIA_SSIM_EXAMPLES = {
    "source": "Brescia et al., figures 4.1-4.8 (single images, 64 gray -> 256 colour)",
    "ssim": [0.615, 0.537, 0.268, 0.246, 0.556, 0.554],
}

# Published x4 bicubic baselines (Y channel, border 4), e.g. Kim et al. 2016 (VDSR), Table 2.
BICUBIC_X4 = {
    "source": "bicubic x4 rows of published SR tables (e.g. VDSR, Kim et al. 2016, Table 2)",
    "Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027), "BSD100": (25.96, 0.6675),
}

# Published x4 results of the SR networks Brescia et al. uses (Ledig et al. 2017, "Photo-Realistic Single
# Image Super-Resolution Using a GAN", Table 2: PSNR-Y dB / SSIM-Y, border 4): full-size ImageNet
# training (350k images, 10^6 updates), so far above what a CPU-sized run reaches.
SR_PUBLISHED_X4 = {
    "source": "Ledig et al. 2017 (SRGAN), Table 2",
    "rows": {
        "SRResNet (MSE)": {"Set5": (32.05, 0.9019), "Set14": (28.49, 0.8184), "BSD100": (27.58, 0.7620)},
        "SRGAN (VGG54)": {"Set5": (29.40, 0.8472), "Set14": (26.02, 0.7397), "BSD100": (25.16, 0.6688)},
    },
}

# Tolerances of the protocol check : the bicubic row must match the published one.
BICUBIC_TOLERANCE = {"Set5": (0.05, 0.005), "Set14": (0.1, 0.005), "BSD100": (0.05, 0.005)}
