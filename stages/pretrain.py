"""DVC stage `pretrain`: see dvc.yaml and huescale.pipeline.stages.pretrain."""

from huescale.pipeline.stages import pretrain
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("pretrain", pretrain.run)
