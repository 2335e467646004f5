"""Why recurrent nets forget, computed: recursions, saturation, Jacobian chains, error flow, and
truncated BPTT, all from the cells and derivations the rest of lstmsym builds.

- ``recursion``: seed 001's linear recursion h(t) = W h(t-1) + C x(t) against lambda_max^t, and
  scalar/vector recursions with sigmoid, tanh, ReLU (saturation, blow-up, memory).
- ``jacobians``: dS_t/dS_{t-k} from the *derived* per-step Jacobian; the LSTM's CEC.
- ``errorflow``: Hochreiter's sum over paths (seed 003) against BPTT.
- ``truncation``: truncated BPTT (k2) on a long-lag task, with the generated kernels.
- ``compare``: cells side by side; ``timing``: a kernel against torch, for notebook 06.
- ``topics``: the ``lstmsym analyze <topic>`` reports; ``plotting``: the figures (matplotlib is
  imported only there, and only when a figure is drawn).

>>> from lstmsym.analysis import linear_response
>>> round(linear_response([[0.5]], steps=2).norms[-1], 4)
0.25
"""
from lstmsym.analysis.compare import side_by_side
from lstmsym.analysis.errorflow import bptt_flow, check_error_flow, path_sum, random_net
# numeval's ``evaluate`` is not re-exported here: the name would hide the submodule evaluate
from lstmsym.analysis.evaluate import random_params, run_forward, spectral_radius
from lstmsym.analysis.jacobians import (JacobianChain, gate_product, jacobian_chain,
                                        step_jacobian, step_jacobians)
from lstmsym.analysis.recursion import (MatrixError, linear_response, saturation_sweep,
                                        scalar_recursion, vector_recursion)
from lstmsym.analysis.topics import (TOPICS, Report, analyze_errorflow, analyze_jacobians,
                                     analyze_linear, analyze_saturation, analyze_truncation)
from lstmsym.analysis.truncation import truncation_effect

__all__ = [
    "side_by_side",
    "bptt_flow", "check_error_flow", "path_sum", "random_net",
    "random_params", "run_forward", "spectral_radius",
    "JacobianChain", "gate_product", "jacobian_chain", "step_jacobian", "step_jacobians",
    "MatrixError", "linear_response", "saturation_sweep", "scalar_recursion",
    "vector_recursion",
    "TOPICS", "Report", "analyze_errorflow", "analyze_jacobians", "analyze_linear",
    "analyze_saturation", "analyze_truncation",
    "truncation_effect",
]
