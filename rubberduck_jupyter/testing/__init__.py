"""Test and development helpers for RubberDuck (not imported by the extension itself)."""
