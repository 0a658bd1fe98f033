"""Route groups, one module per caller: client (bind), gui (reads)."""
