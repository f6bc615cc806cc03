"""Evaluation: scoring trained models and showing the scores.

- ``evaluate``: the trained models and baselines on a split (the evaluate stage, ablation rows) and on any
  folder of photographs.
- ``benchmark``: the published x4 super-resolution protocol (Set5, Set14, BSD100 or any HR folder).
- ``fid``: the FID Inception network (safe weight loading) and the Frechet distance.
- ``report``: the HTML reports (Jinja2), each page's context, the run metadata.
- ``charts``: inline SVG charts (loss curves, scatter plots); ``tables``: the metric tables (HTML, Markdown).
- ``reference``: published numbers the reports compare with.

The metric table itself is ``huescale.metrics`` (a foundation: config and training read it too).

May import: the foundations, ``data``, ``models``, ``training`` and ``evaluation``; never ``inference`` or
``pipeline``.
"""
