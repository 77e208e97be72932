"""Wizards: multi-page dialogs that build a job config (Train > New…)."""
