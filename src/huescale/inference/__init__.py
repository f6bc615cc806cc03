"""Inference on people's own photographs, any size, in bounded memory.

- ``tiling``: the ``Colorizer``: colorize (and upscale) one photograph tile by tile.
- ``paths``: inputs (files, folders, globs) -> image files and checked output paths; the writable formats.
- ``writer``: colorize's output files: marked, atomic, PNG streamed band by band.
- ``export``: ONNX export of a colorizer and an upscaler, checked against PyTorch.
- ``shipped``: the model installed with the package and its card (``huescale ship``).

May import: the foundations, ``data``, ``models``, ``training``, ``inference``, and ``evaluation.tables``
(the model card's metric table); never ``pipeline``.
"""
