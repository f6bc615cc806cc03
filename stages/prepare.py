"""DVC stage `prepare`: see dvc.yaml and huescale.pipeline.stages.prepare."""

from huescale.pipeline.stages import prepare
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("prepare", prepare.run)
