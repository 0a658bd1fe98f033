"""The worker wrapper: runs one task instance's command on a node and reports on it.

Kept free of imports here: ``python -m herdsman.worker`` imports this package first, and the
worker's start-up time is part of every task's latency. Import from the modules:
:func:`herdsman.worker.wrapper.run_task_instance`.
"""

__all__: list[str] = []
