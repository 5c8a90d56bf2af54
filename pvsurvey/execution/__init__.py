"""Running rounds of tasks: the generic Dask executor (:mod:`.executor`) and moving
task files to workers that share no disk (:mod:`.shipping`). Knows nothing of roofs."""
