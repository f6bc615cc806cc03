"""DVC stage `evaluate`: see dvc.yaml and huescale.pipeline.stages.evaluate."""

from huescale.pipeline.stages import evaluate
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("evaluate", evaluate.run)
