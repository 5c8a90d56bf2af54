"""Running rounds of tasks: the generic Dask executor (:mod:`.executor`), each task with the
cyclic garbage collector paused (:mod:`.collector`), and moving
task files to workers that share no disk (:mod:`.shipping`). Knows nothing of roofs."""
