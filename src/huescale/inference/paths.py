"""Where ``huescale colorize`` reads and writes: inputs (files, folders, globs) planned into image files and their
relative output paths, the formats it can write, and the checked output paths that never overwrite or lose a
photograph.
"""

from __future__ import annotations

import glob
from pathlib import Path

from huescale.data.images import IMAGE_EXTENSIONS

# output formats Pillow writes, by extension
WRITABLE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                    ".tiff": "TIFF", ".bmp": "BMP"}


def iter_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (recursive) and globs -> the image files, sorted, without duplicates.

    Raises:
        FileNotFoundError: an input that matches nothing, or a folder without images (names it).
    """
    return [f for f, _ in plan_inputs(inputs)]


def plan_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """Files, folders (recursive) and globs -> ``(image file, relative output path)``, without duplicates.

    A folder's images keep their path below the folder, a glob's their path below its
    non-wildcard prefix, a plain file its name; so same-named photos in different
    sub-folders do not overwrite each other.

    Raises:
        FileNotFoundError: an input that matches nothing, or a folder that holds no image file
            (names it, and the extensions looked for).
    """
    out: dict[Path, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"{item}: the folder holds no image file "
                                        f"({', '.join(sorted(IMAGE_EXTENSIONS))}, sub-folders included)")
            for f in found:
                out.setdefault(f, f.relative_to(p))
        elif p.is_file():
            out.setdefault(p, Path(p.name))
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"{item}: no such file, folder or glob match")
            parts = Path(item).parts
            base = Path(*[q for q in parts[:next(i for i, q in enumerate(parts) if glob.has_magic(q))]] or ["."])
            for f in matches:
                try:
                    out.setdefault(f, f.relative_to(base))
                except ValueError:
                    out.setdefault(f, Path(f.name))
    return list(out.items())


def output_format(path: str | Path) -> str:
    """Pillow format name for an output file, from its extension.

    Raises:
        ValueError: an extension huescale cannot write (lists the ones it can).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in WRITABLE_FORMATS:
        raise ValueError(f"{path}: cannot write {suffix or 'files without extension'}; "
                         f"use one of {', '.join(sorted(WRITABLE_FORMATS))} (--format)")
    return WRITABLE_FORMATS[suffix]


def output_paths(plan: list[tuple[Path, Path]], out: str | Path, fmt: str | None = None,
                 input_dirs: list[str | Path] = ()) -> list[tuple[Path, Path]]:
    """Where ``huescale colorize`` writes each input: ``(input file, output file)``, checked so that no
    photograph is ever overwritten or lost.

    ``out`` is a folder (each input goes to ``out / <its relative path>``, with the extension
    ``fmt`` or its own when writable, else ``.png``) or, for a single input, a file.

    Args:
        plan: ``(image file, relative output path)`` from :func:`plan_inputs`.
        out: the ``--out`` folder or file.
        fmt: ``--format`` as an extension (``".png"``), or None.
        input_dirs: the folders given as inputs (``--out`` must not lie inside one).

    Returns:
        The ``(input, output)`` pairs in plan order.

    Raises:
        ValueError: ``out`` names one file but several images were given; ``out`` is an existing file
            that is not an image file colorize can write (it would be taken as a folder); ``out`` lies
            inside an input folder; an output would be an input file (itself or another one); two inputs
            map to one output (both named); an output's folder is an existing file.
    """
    out = Path(out)
    single_file = out.suffix.lower() in WRITABLE_FORMATS and not out.is_dir()
    if single_file and len(plan) > 1:
        what = "an existing file" if out.is_file() else "one file"
        raise ValueError(f"--out {out} names {what} but {len(plan)} images were given; pass a folder")
    if not single_file and (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a folder; pass a folder for the results (or, for "
                         f"one input, an output file ending in {', '.join(sorted(WRITABLE_FORMATS))})")
    out_r = out.resolve()
    for d in input_dirs:
        if out_r == Path(d).resolve() or out_r.is_relative_to(Path(d).resolve()):
            raise ValueError(f"--out {out} lies inside the input folder {d}: the results would overwrite or mix "
                             "with the photographs; pass an --out outside it")
    inputs = {f.resolve(): f for f, _ in plan}
    taken: dict[Path, Path] = {}
    pairs = []
    for f, rel in plan:
        if single_file:
            dest = out
        else:
            keep = rel.suffix.lower() if rel.suffix.lower() in WRITABLE_FORMATS else ".png"
            dest = out / rel.with_suffix(fmt or keep)
        key = dest.resolve()
        if key in inputs:
            raise ValueError(f"{dest} is the input {inputs[key]}: colorizing would replace the photograph; "
                             "pass another --out (or --format)")
        if key in taken:
            raise ValueError(f"{taken[key]} and {f} would both be written to {dest}; colorize them into "
                             "different --out folders, pass their folder instead of the files, or rename one")
        blocker = next((q for q in dest.parents if q.is_file()), None)
        if blocker is not None:
            raise ValueError(f"{dest} (output of {f}) cannot be written: {blocker} is a file, not a folder; "
                             "pass another --out")
        taken[key] = f
        pairs.append((f, dest))
    return pairs
