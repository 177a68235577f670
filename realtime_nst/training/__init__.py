"""Making style models (torch): the networks, data, training objective and loop, distillation, and the checked ONNX export."""
