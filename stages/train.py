"""DVC stage `train`: see dvc.yaml and huescale.stages.train."""

from huescale.stages import main

if __name__ == "__main__":
    main("train")
