"""What a request knows: the notebook, the cell, the error, and the conversation so far."""
