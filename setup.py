from setuptools import find_packages, setup

setup(
    name="mome",
    version="0.1.0",
    description="MoME: Mixture of Matryoshka Experts for LLM-based audio-visual speech recognition (ESPnet recipes)",
    packages=find_packages(include=["mome", "mome.*"]),
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "mome-params = mome.bin.params:main",
            "mome-flops = mome.bin.flops:main",
            "mome-transcribe = mome.bin.transcribe:main",
            "mome-convert = mome.bin.convert:main",
            "mome-pack-model = mome.bin.pack_model:main",
        ]
    },
)
