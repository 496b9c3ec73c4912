"""Thin command-line entry points (``python -m mome.bin.<name>``): argparse plus one library call."""
