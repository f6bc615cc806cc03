"""DVC stage `report`: see dvc.yaml and huescale.stages.report."""

from huescale.stages import main

if __name__ == "__main__":
    main("report")
