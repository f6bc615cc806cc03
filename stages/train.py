"""DVC stage `train`: see dvc.yaml and huescale.stages.train."""

from huescale.stages import train
from huescale.stages.runner import main

if __name__ == "__main__":
    main("train", train.run)
