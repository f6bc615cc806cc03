"""huescale: small grayscale photographs into large color ones.

The library behind the DVC stages (``stages/``), the Prefect flow (``flows/``)
and the ``huescale`` command. See ``DESIGN.md`` of the project for the contracts.
"""

__version__ = "0.1.0"
