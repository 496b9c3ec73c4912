"""ESPnet glue: the AVSR task (choices, data types, preprocessing), the ESPnet model wrapper around
:class:`mome.models.avsr.AVSRModel`, our trainer additions, shape files and elastic inference.

- ``task``: ``AVSRTask`` (ESPnet ``AbsTask``) and its choices; importing it registers everything.
- ``choices``: what the config names build (LLM, compressor, encoders, adapters).
- ``model``: ``AVSRESPnetModel`` (batch -> loss, stats, weight; checkpoints without frozen pretrained weights).
- ``readers``: the ``roi`` data type (mouth-ROI videos in roi.scp).
- ``preprocess``: tokenisation and augmentation in the data loader.
- ``trainer``: skipped-step counts, DDP replica check.
- ``shapes``: shape files for the batch samplers from utt2dur.
- ``inference``: loading a trained model, decoding a data directory at any trained rate pair.
- ``features``: frozen-encoder features dumped once (Kaldi ark/scp) for training without re-encoding.
"""
