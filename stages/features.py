"""DVC stage `features`: see dvc.yaml and huescale.pipeline.stages.features."""

from huescale.pipeline.stages import features
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("features", features.run)
