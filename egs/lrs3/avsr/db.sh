# Where the corpus lives on this machine: edit these paths (or set them in the environment).
LRS3=${LRS3:-/path/to/LRS3}                     # holds pretrain/ trainval/ test/ (<speaker>/<clip>.mp4 + .txt)
LRS3_LANDMARKS=${LRS3_LANDMARKS-/path/to/LRS3_landmarks}  # <split>/<speaker>/<clip>.pkl (68 points per frame); empty: none (./run.sh --landmarks detect finds them)
NOISE=${NOISE:-}                                # babble noise wav: the noisy test sets and training augmentation; empty: none
export MOME_PRETRAINED=${MOME_PRETRAINED:-$(cd ../../.. && pwd)/tools/pretrained}  # local weights the configs read: whisper-medium/, large_vox_iter5.pt, Llama-3.2-1B/ (tools/get_pretrained.sh fills it too)
