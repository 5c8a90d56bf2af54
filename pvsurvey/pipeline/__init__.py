"""`pvsurvey run`: check the inputs (:mod:`.inputs`), survey each partition
(:mod:`.survey_task`), add the registry's PV status and group the candidate
projects (:mod:`.pv_and_projects`), write the outputs (:mod:`.outputs`) and
publish the run (:mod:`.run`)."""
