"""DVC stage `download`: see dvc.yaml and huescale.stages.download."""

from huescale.stages import main

if __name__ == "__main__":
    main("download")
