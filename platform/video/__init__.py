"""Video: streamed decode/encode (PyAV), temporal colorization, whole clips."""
