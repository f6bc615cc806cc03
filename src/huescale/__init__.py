"""huescale: small grayscale photographs into large color ones.

The library behind the DVC stages (``stages/``), the Prefect flow (``flows/``)
and the ``huescale`` command. See ``docs/architecture.md`` for the data flow and ``docs/sources.md`` for the sources.

The folders are the layers; a module imports from its own layer and the layers below it, never above:

    foundations  <-  data, models  <-  training  <-  evaluation, inference  <-  pipeline     (cli: any)

The foundations are the modules at this level, small and imported by everyone: ``config`` (the params'
dataclasses), ``config_io`` (reading them), ``validation`` (their values), ``color``, ``abbins``, ``resize``,
``metrics`` (the metric table), ``atomic`` (file writes), ``locks``, ``errors``, ``progress``, ``redact``,
``tracking`` (MLflow), ``profiles``; ``cli`` (with ``cli_colorize``, ``cli_commands``) is the ``huescale``
command and may import anything. ``data`` and ``models`` import only foundations (and not each other);
``inference`` may also use ``evaluation.tables``' metric tables (the shipped model's card).
The one exception: ``validation`` checks model and loss names against the registries of ``models`` and
``training.losses`` when it validates params, importing them inside those functions.
"""

__version__ = "0.1.0"

from importlib import resources as _resources
from pathlib import Path as _Path

# package data (installed with the wheel, found from any directory): the reports' Jinja2 templates
TEMPLATES = _Path(str(_resources.files(__name__) / "templates"))
