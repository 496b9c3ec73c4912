"""A synthetic corpus in LRS3's exact layout (``mini_lrs3``), generated deterministically from a seed.

Speech comes from espeak-ng with the synthesiser's own word and phoneme times; the video is a drawn
face whose mouth follows the phonemes through viseme classes, with 68-point landmarks on the drawn
features. Modules, in the order the data flows:

- :mod:`.text`     sentences from a small English grammar (several hundred words)
- :mod:`.espeak`   libespeak-ng through ctypes, in a server process that keeps its output reproducible
- :mod:`.speech`   audio at 16 kHz with word and phoneme times from espeak-ng's events
- :mod:`.visemes`  phonemes -> 14 viseme classes -> smoothed per-frame mouth parameters
- :mod:`.face`     face geometry, landmarks and vectorised rendering
- :mod:`.speakers` voices and faces of the synthetic speakers
- :mod:`.mp4`      h264 + AAC writing with PyAV
- :mod:`.corpus`   planning, one clip end to end, babble noise, the whole (parallel, resumable) run
"""

from mome.data.synth.corpus import SIZES, generate

__all__ = ["SIZES", "generate"]
