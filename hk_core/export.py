"""Export: a trained model's ``apply`` as serialized StableHLO that runs without its code.

Serialization needs the ``flatbuffers`` package (the ``export`` extra: ``pip install
".[export]"`` in a checkout). ``import hk_core`` does not import this module:
``import hk_core.export``.
"""

from hk_core._src.export.export import Exported as Exported
from hk_core._src.export.export import Loaded as Loaded
from hk_core._src.export.export import export as export
from hk_core._src.export.export import load as load
from hk_core._src.export.onnx_export import UnsupportedOnnxOpError as UnsupportedOnnxOpError
from hk_core._src.export.onnx_export import to_onnx as to_onnx
from hk_core._src.export.quantize import int8_weights as int8_weights
from hk_core._src.export.quantize import quantize_int8 as quantize_int8

__all__ = ["Exported", "Loaded", "UnsupportedOnnxOpError", "export", "int8_weights", "load",
           "quantize_int8", "to_onnx"]
