"""Names of the PyTorch fixture cases and file kinds, shared by the builder and the tests.

Kept free of torch imports so the tests can parametrize without importing torch.
"""

from __future__ import annotations

#: One module configuration each (see torch_models.py ``_cases``).
CASES = ("lstm", "lstm_batch_first", "lstm_proj_bi", "lstm_3_layers_bi", "lstm_no_bias",
         "gru_bi", "gru_no_bias", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell",
         "rnn_cell_relu", "tagger", "bare_lstm", "encoder_decoder",
         "lstm_half", "gru_bfloat16")

#: Every file each case is saved as.
FILE_KINDS = ("sd_zip", "checkpoint", "lightning", "whole", "legacy", "safetensors",
              "torchscript", "whole_protocol4", "legacy_protocol4", "traced")
