# Where the corpus lives on this machine: edit these paths (or set them in the environment).
LRS2=${LRS2:-/path/to/LRS2}                     # holds mvlrs_v1/{main,pretrain}/ and pretrain.txt train.txt val.txt test.txt
LRS2_LANDMARKS=${LRS2_LANDMARKS-/path/to/LRS2_landmarks}  # {main,pretrain}/<show>/<clip>.pkl (68 points per frame); empty: none (./run.sh --landmarks detect finds them)
NOISE=${NOISE:-}                                # babble noise wav: the noisy test sets and training augmentation; empty: none
export MOME_PRETRAINED=${MOME_PRETRAINED:-$(cd ../../.. && pwd)/tools/pretrained}  # local weights the configs read: whisper-medium/, large_vox_iter5.pt, Llama-3.2-1B/ (tools/get_pretrained.sh fills it too)
