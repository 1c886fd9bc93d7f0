"""Weight porting: read any supported weights file, write the canonical one or a framework's own.

Supported files, by extension (:data:`FORMATS`; docs/formats.md lists each with the library
version it was tested against): the canonical ``.safetensors`` checkpoint, ``.pt``/``.pth``/``.bin``
(PyTorch state dicts, training checkpoints and TorchScript archives), a Hugging Face transformers
folder, ``.weights.h5`` and ``.keras`` (Keras 3, keras-hub; keras-hub's ``.weights.h5`` is written with
``--to keras-hub``), ``.pdparams`` (Paddle), and, read only, ``.pth.tar``/``.ckpt`` training checkpoints,
``paddle.jit.save`` exports (``.pdiparams`` beside their program) and the legacy Keras ``.h5`` model.

Modules, from the bottom up:

* :mod:`.formats`: the format table, :func:`format_of`, :class:`ConvertError`.
* :mod:`.canonical`: the safetensors container (numpy only) and the canonical checkpoint's metadata.
* :mod:`.readers`: each format -> its tensors as stored (:class:`RawFile`); refuses pickles that carry code.
* :mod:`.torchscript`: a TorchScript archive's parameters, read without running its program.
* :mod:`.paddle_inference`: a ``paddle.jit.save`` export's parameters, parsed with numpy and named from
  its program's data flow (never run).
* :mod:`.hf`: the Hugging Face ``save_pretrained`` folder, read and written without transformers.
* :mod:`.keras_hub`: keras-hub's ResNet-18 arguments and its layer names; ``resnet_keras.hub`` writes the file.
* :mod:`.schemes`: naming schemes as data, detection, config inference.
* :mod:`.pipeline`: :func:`read` (raw -> scheme -> canonical -> config -> validated :class:`Source`),
  :func:`write`, :func:`convert`.

Data flows one way: a framework package calls :func:`read` to load a model and
:func:`write_canonical` to save one; neither calls back into a framework package.
Writing a native file is the framework package's own job (its ``save``);
:func:`write` and :func:`convert`, which the ``convert`` command uses, go down into
the target's framework package through its public interface.

Importing this package imports no framework; reading imports only what the format
needs (torch for ``.pt``/``.pth``, h5py for the Keras files).
"""

from __future__ import annotations

from .canonical import CheckpointError
from .canonical import write as write_canonical
from .formats import FORMATS, ConvertError, Format, format_of, save_format
from .pipeline import Source, convert, read, resolve, write
from .readers import RawFile, read_raw
from .schemes import SchemeError

__all__ = [
    "FORMATS",
    "CheckpointError",
    "ConvertError",
    "Format",
    "RawFile",
    "SchemeError",
    "Source",
    "convert",
    "format_of",
    "read",
    "read_raw",
    "resolve",
    "save_format",
    "write",
    "write_canonical",
]
