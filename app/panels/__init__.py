"""Domain panels of the main window; each talks only to the ``Session``."""
