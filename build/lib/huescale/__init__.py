"""huescale: small grayscale photographs into large color ones.

The library behind the DVC stages (``stages/``), the Prefect flow (``flows/``)
and the ``huescale`` command. See ``docs/architecture.md`` for the data flow and ``docs/sources.md`` for the sources.
"""

__version__ = "0.1.0"

from importlib import resources as _resources
from pathlib import Path as _Path

# package data (installed with the wheel, found from any directory): the reports' Jinja2 templates
TEMPLATES = _Path(str(_resources.files(__name__) / "templates"))
