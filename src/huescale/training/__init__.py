"""Training: turning a pair store into trained networks.

- ``tasks``: the three tasks (colorization, upscaling, joint): tier, channels, batch -> (input, target).
- ``losses``: the generator objective and the registry's questions, over every loss module:
  ``loss_registry`` (base class, ``@register``), ``colour_losses``, ``vgg_loss``, ``gan_loss``.
- ``recipe``: params -> networks, objective, optimisers; ``run_phase`` runs one phase.
- ``trainer``: the ``Trainer`` loop (resume, checkpoints, validation, DDP, bf16).
- ``phase_config``: a phase's loop settings (``PhaseConfig``) and the learning-rate schedule.
- ``history``: the per-epoch record and its CSV; ``scoring``: the validation metrics over a dataset.
- ``phases``: the one owner of a training phase (check, build, run, calibrate, save).
- ``calibrate``: a colorizer's decoding chosen on validation photographs after a phase.
- ``checkpoint``: the one checkpoint writer and reader (model registry names, never module paths).
- ``distributed``: the device, bf16 and ``torchrun`` process groups.

May import: the foundations, ``data``, ``models`` and ``training``; never ``evaluation``, ``inference`` or
``pipeline``.
"""
