"""The Keras toolkit and Keras's two file formats (``.keras`` archives, HDF5 ``.h5``)."""
