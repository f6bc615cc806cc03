"""DVC stage `features`: see dvc.yaml and huescale.stages.features."""

from huescale.stages import features
from huescale.stages.runner import main

if __name__ == "__main__":
    main("features", features.run)
