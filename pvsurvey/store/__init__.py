"""The run directory and what lives beside it: dated runs, the lock and retention
(:mod:`.runs`), copies on object storage (:mod:`.object_storage`), the task cache
(:mod:`.cache`), the progress history (:mod:`.history`) and the park managers'
candidate statuses (:mod:`.candidate_status`)."""
