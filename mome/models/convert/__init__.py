"""Converters from the formats pretrained parts ship in (CTranslate2, GGUF) to Hugging Face ``save_pretrained``
directories, which is what every loader of this project reads. Used by ``tools/get_pretrained.sh`` through the
``mome-convert`` command."""
