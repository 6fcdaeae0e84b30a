"""Export: a trained model's ``apply`` as serialized StableHLO that runs without its code.

Serialization needs the ``flatbuffers`` package (``pip install "hk_core[export]"``).
``import hk_core`` does not import this module: ``import hk_core.export``.
"""

from hk_core._src.export.export import Exported as Exported
from hk_core._src.export.export import export as export
from hk_core._src.export.export import load as load

__all__ = ["Exported", "export", "load"]
