"""DVC stage `download`: see dvc.yaml and huescale.stages.download."""

from huescale.stages import download
from huescale.stages.runner import main

if __name__ == "__main__":
    main("download", download.run)
