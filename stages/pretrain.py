"""DVC stage `pretrain`: see dvc.yaml and huescale.stages.pretrain."""

from huescale.stages import pretrain
from huescale.stages.runner import main

if __name__ == "__main__":
    main("pretrain", pretrain.run)
