"""Dialogs of the main window (model manager, direction fitting, tagging, export)."""
