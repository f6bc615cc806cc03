"""DVC stage `evaluate`: see dvc.yaml and huescale.stages.evaluate."""

from huescale.stages import evaluate
from huescale.stages.runner import main

if __name__ == "__main__":
    main("evaluate", evaluate.run)
