"""Build the test photographs' bundle (huescale.data.testphotos) from a local copy, for publishing.

    python scripts/make_test_photos.py PHOTO_FOLDER huescale-test-photos-v1.tar

The same photographs give the same bytes; the script prints the bundle's SHA-256 and whether it is the one
pinned in huescale.data.testphotos.BUNDLE_SHA256 (a new selection needs a new file name and a new pin).
"""

from __future__ import annotations

import argparse
import sys

from huescale.data import testphotos


def main(argv: list[str] | None = None) -> int:
    """Build the bundle; exit status 0 when its SHA-256 is the pinned one, 1 otherwise."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a folder with imagenet_sample/, bsds500/, coco128/, imagenette/, benchmarks/")
    ap.add_argument("out", help="the tar to write (never overwritten)")
    args = ap.parse_args(argv)
    sha = testphotos.build(args.folder, args.out)
    pinned = sha == testphotos.BUNDLE_SHA256
    print(f"{args.out}: sha256 {sha} ({'the pinned bundle' if pinned else 'NOT the pinned bundle'})")
    return 0 if pinned else 1


if __name__ == "__main__":
    sys.exit(main())
