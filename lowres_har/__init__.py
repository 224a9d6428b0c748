"""lowres-har: action recognition on low- and extremely low-resolution video.

Public entry points::

    import lowres_har
    lowres_har.list_models()                       # registered architectures
    model = lowres_har.create_model("r3d_18", num_classes=12)
    lowres_har.model_card("r3d_18")                # paper, inputs, defaults, results
"""

from lowres_har._compat import ensure_torchvision

ensure_torchvision()  # must run before anything imports torchvision (lightning, timm, ...)

from lowres_har._version import __version__  # noqa: E402
from lowres_har.registry import (  # noqa: E402
    InputSpec,
    ModelCard,
    create_model,
    list_models,
    model_card,
    register_model,
)

__all__ = [
    "InputSpec",
    "ModelCard",
    "__version__",
    "create_model",
    "list_models",
    "model_card",
    "register_model",
]
