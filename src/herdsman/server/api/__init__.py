"""The HTTP layer: the FastAPI app, its request dependencies and one router per caller.

Handlers parse a request, call one function of :mod:`herdsman.server.domain` (changes) or
:mod:`herdsman.server.queries.workflows` (reads) inside one unit of work, and answer its result.
"""
