"""DVC stage `report`: see dvc.yaml and huescale.stages.report."""

from huescale.stages import report
from huescale.stages.runner import main

if __name__ == "__main__":
    main("report", report.run)
