#!/usr/bin/env bash
# rnnlab's GPU check, in one command, on a machine with a CUDA GPU:
#
#     bash benchmarks/gpu_check.sh
#
# Runs every CUDA test, checks the scratch and the cuDNN nn paths on the GPU against the
# CPU (float64, and float32 with TF32 off), benchmarks d2l's LSTM on the GPU against
# torch.nn, and prints one table (benchmarks/gpu_check.py says what each part does).
# Exit status: 0 all passed, 1 a failure or a mismatch, 3 no CUDA GPU (nothing checked).
# Use the Python of the environment rnnlab is installed in: PYTHON=/path/to/python.
set -u
cd "$(dirname "$0")/.." || exit 1
exec "${PYTHON:-python}" benchmarks/gpu_check.py --device "${RNNLAB_GPU:-cuda}" "$@"
