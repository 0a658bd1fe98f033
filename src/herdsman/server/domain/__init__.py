"""What changes the database: one module per concern, each applying the lifecycle rules.

Functions here take a ``Session`` (and a change recorder when they change statuses) and never
commit: the HTTP layer runs each request as one unit of work. Statuses change only through
:mod:`herdsman.server.domain.transitions` and the bulk moves beside it, which ask
:mod:`herdsman.core.statuses` and :mod:`herdsman.core.lifecycle`.
"""
