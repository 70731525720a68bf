"""The TensorFlow toolkit: checkpoint bundles (crc32c, snappy, sstable, ordered_code, bundle),
TF2 object graphs and TF1 meta graphs, each decoder in a module of its own."""
