"""Blocks shared by more than one model family or recipe."""
