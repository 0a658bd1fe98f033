"""The ``slurm`` cluster plugin: job arrays, one squeue per interval, sacct for what was lost.

:mod:`~herdsman.plugins.slurm.plugin` is the plugin, :mod:`~herdsman.plugins.slurm.commands`
runs Slurm's commands, :mod:`~herdsman.plugins.slurm.parsing` reads their output,
:mod:`~herdsman.plugins.slurm.script` writes job scripts and
:mod:`~herdsman.plugins.slurm.worker` is the worker every job runs.
"""

__all__: list[str] = []
