"""DVC stage `benchmark`: see dvc.yaml and huescale.pipeline.stages.benchmark."""

from huescale.pipeline.stages import benchmark
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("benchmark", benchmark.run)
