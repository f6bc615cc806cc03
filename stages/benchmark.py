"""DVC stage `benchmark`: see dvc.yaml and huescale.stages.benchmark."""

from huescale.stages import main

if __name__ == "__main__":
    main("benchmark")
