"""Bridges between lstmsym's parameter dictionaries and other frameworks.

``lstmsym.interop.torch`` maps ``torch.nn.RNN``/``LSTM``/``GRU`` modules to and from the
parameter dictionaries of the generated kernels. Importing this package does not import torch.
"""
