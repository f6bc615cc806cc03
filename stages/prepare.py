"""DVC stage `prepare`: see dvc.yaml and huescale.stages.prepare."""

from huescale.stages import prepare
from huescale.stages.runner import main

if __name__ == "__main__":
    main("prepare", prepare.run)
