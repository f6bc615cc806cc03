"""huescale: small grayscale photographs into large color ones.

The library behind the DVC stages (``stages/``), the Prefect flow (``flows/``)
and the ``huescale`` command. See ``docs/architecture.md`` for the data flow and ``docs/sources.md`` for the sources.
"""

__version__ = "0.1.0"
