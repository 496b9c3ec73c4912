"""MoME: Mixture of Matryoshka Experts for audio-visual speech recognition."""
__version__ = "0.1.0"
