"""Seeded experiment scripts that write the result files the chapters load.

Each module runs as ``python -m mini_transformer.experiments.<name> --scale small|full|tiny``:
``small`` regenerates the committed file on a CPU, ``full`` is the GPU configuration, ``tiny``
is the seconds-long configuration CI runs so the script cannot rot.
"""
