"""Wire schemas: the pydantic models that cross HTTP, one module per caller."""

__all__ = ["API_PREFIX"]

# Every route lives under this prefix; a future incompatible API gets /api/v2 beside it.
API_PREFIX = "/api/v1"
