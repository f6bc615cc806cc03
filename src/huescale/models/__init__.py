"""Model registry: every generator, upscaler and discriminator by name.

Build any model with ``build(name, **kwargs)``; the registered names and the
seed each comes from are listed by ``available()``. The modules are imported
explicitly here (no folder scanning), so a reader can follow them.

May import: the foundations and ``models``; never ``data`` or the layers above.
"""

from huescale.models import (  # noqa: F401  (register entries)
    colornet,
    discriminators,
    generators,
    semantic,
    upscalers,
)
from huescale.models.registry import available, build, register

__all__ = ["available", "build", "register"]
