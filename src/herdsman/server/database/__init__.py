"""The database: the engine and its units of work, the models, plain SQL for hot paths, bulk
get-or-create helpers, the change feed and the migrations."""
