"""MoME: Mixture of Matryoshka Experts for audio-visual speech recognition.

``mome.AVSR2Text`` (:mod:`mome.inference`) is the object that transcribes with a trained model.
"""

__version__ = "0.1.0"
__all__ = ["AVSR2Text", "Transcription"]


def __getattr__(name):  # imported on first use: ``import mome`` stays light
    if name in __all__:
        from mome import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'mome' has no attribute {name!r}")
