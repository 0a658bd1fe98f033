"""The cluster plugins shipped with herdsman: ``sequential``, ``multiprocess`` and ``dummy``.

Each is registered under its name in the ``herdsman.plugins`` entry-point group and loaded by
:func:`herdsman.distributor.plugin.load_plugin`; nothing is imported here.
"""

__all__: list[str] = []
