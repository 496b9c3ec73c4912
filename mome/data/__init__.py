"""Corpus formats, audio and mouth-ROI extraction, noise, and the synthetic mini corpus."""
