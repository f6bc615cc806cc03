"""DVC stage `benchmark`: see dvc.yaml and huescale.stages.benchmark."""

from huescale.stages import benchmark
from huescale.stages.runner import main

if __name__ == "__main__":
    main("benchmark", benchmark.run)
