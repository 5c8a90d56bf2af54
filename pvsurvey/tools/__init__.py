"""Commands over a finished run directory: the progress report (:mod:`.progress_report`),
the candidate lists' export, import and gap plan (:mod:`.candidate_lists`) and the
officials' maps (:mod:`.map_writer`). They read a run; they never run a survey."""
