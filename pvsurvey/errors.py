"""Exception classes.

Input problems raise subclasses of :class:`PVSurveyError` that also inherit
``ValueError`` (the pattern of rasterio's ``errors.py``), so callers that only
know the builtin still catch them. Every message names the file, key or row
and says how to fix it; the CLI prints it as one line and exits with code 2.
"""


class PVSurveyError(Exception):
    """Root of every error pvsurvey raises on purpose."""


class ConfigError(PVSurveyError, ValueError):
    """The survey config is missing, unparsable or has a wrong key, type or value."""


class InputFileError(PVSurveyError, ValueError):
    """An input file is missing, unreadable, empty or unusable as a whole."""


class CRSError(InputFileError):
    """An input has no coordinate reference system or an unusable one."""


class IrradianceUnitsError(InputFileError):
    """The irradiance raster's values do not fit its declared units."""


class RunLockedError(PVSurveyError, RuntimeError):
    """Another run holds the lock on the same output directory."""
