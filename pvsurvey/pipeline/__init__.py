"""`pvsurvey run`: check the inputs (:mod:`.inputs`), survey each partition
(:mod:`.survey_task`), add the registry's PV status and group the candidate
projects (:mod:`.pv_and_projects`), write the outputs (:mod:`.outputs`) and
publish the run (:mod:`.run`)."""

# What the workers of a local cluster import as they boot (the tasks' code): a
# worker is then ready for its first task when it is up, and boots while the run
# prepares (named here, a light module, for a command that starts them early).
WORKER_MODULES = ("pvsurvey.pipeline.survey_task", "pvsurvey.pipeline.pv_and_projects")
