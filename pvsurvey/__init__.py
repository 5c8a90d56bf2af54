"""pvsurvey: rooftop-PV potential of industrial parks and progress toward a city's targets."""

__version__ = "0.1.0"
