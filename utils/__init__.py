"""Shared, tested helpers for the Dropout in Depth chapters, assignments and tests."""

import os

# Keras 3 must run on TensorFlow in this book, whatever ~/.keras/keras.json says, and TensorFlow's
# C++ start-up chatter (CPU feature notes) should not bury the output a reader is looking for.
# Both must be set before Keras or TensorFlow is first imported; a value the user set wins.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# On a shared 2-core machine, OpenMP threads that spin while waiting for each other slow PyTorch training 10x;
# passive waiting changes the speed only, never a result. It must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# TensorFlow splits a sum over its intra-op threads, one per core by default, so a laptop with 8 cores would round
# differently from the machine that stored the book's outputs. One thread gives the same numbers everywhere (PyTorch
# gets the same from utils.seeding.seed_everything) and is no slower for the book's small networks.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
