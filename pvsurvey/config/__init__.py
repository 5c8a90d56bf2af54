"""The survey config: its schema (:mod:`.schema`, every default with its source)
and loading a YAML file into it (:mod:`.loading`). Imports only the base modules."""
