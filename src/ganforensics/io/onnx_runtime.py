"""ONNX export of a torch module and ONNX Runtime sessions that follow the toolkit's threads.

Shared by the Inception feature network (`metrics.inception`) and the exported detectors
(`detectors.onnx`): one export recipe (the TorchScript exporter, opset 17, named dynamic axes)
and one set of session options (`ganforensics.threads`, no spinning, no memory arena).

torch and onnxruntime are imported inside the functions: this bottom layer stays light.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ganforensics.threads import available_cores, current_threads

ONNX_OPSET = 17


def runtime_threads() -> int:
    """The toolkit's one thread setting (`ganforensics.threads`), else every available core."""
    return current_threads() or available_cores()


def export_onnx_bytes(
    net: Any,
    example: Any,
    *,
    input_name: str = "x",
    output_name: str = "y",
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
) -> bytes:
    """`net` (a torch module in eval mode) as an ONNX model (bytes), traced on `example`.

    `dynamic` names the dynamic axes per input/output (default: axis 0 of both, "n").
    The TorchScript exporter (`dynamo=False`) is used: the dynamo one needs `onnxscript`,
    which is not a dependency, and gives the same graph for these convnets.
    """
    import torch

    axes = dict(dynamic or {input_name: {0: "n"}, output_name: {0: "n"}})
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():  # the exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), buf, dynamo=False, input_names=[input_name],
                          output_names=[output_name], dynamic_axes=axes,
                          opset_version=ONNX_OPSET)
    return buf.getvalue()


def ort_session(model: bytes | str, threads: int | None = None,
                providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An `onnxruntime.InferenceSession` of `model` (bytes or a file path) with `threads`
    intra-op threads (default `runtime_threads()`), one inter-op thread, no spin-waiting
    (a busy neighbour then stalls idle threads less) and no CPU memory arena (it kept the
    largest batch's activations: docs/benchmarks.md)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or runtime_threads())
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=list(providers))
