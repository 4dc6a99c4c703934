"""Everything around the models, one sub-package per stage of the data flow, in layers (docs/design.md): io, then
config and ops, data, (the models in nets/), inference, evaluation, export, training, cli."""
