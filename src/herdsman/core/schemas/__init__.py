"""Wire schemas: the pydantic models that cross HTTP, one module per caller."""
