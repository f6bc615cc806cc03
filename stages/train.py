"""DVC stage `train`: see dvc.yaml and huescale.pipeline.stages.train."""

from huescale.pipeline.stages import train
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("train", train.run)
