"""Helpers shared by the test modules: synthetic media and data directories (media), tiny ESPnet configs,
data and trained models (espnet), the real pretrained parts and their markers (real_parts)."""
