"""Model-free review tools: static checks of Python code and notebook cells, traceback
parsing with plain-language diagnoses, code metrics, test skeletons, and the self-correction
loop that re-prompts a model with the problems found in its own code.

Everything here is blocking CPU work (callers run it in a thread) except
`CorrectionLoop.run`, which is async and moves its checks to a thread itself.
"""

from .cells import CodeBlock, MaskedCell, extract_code_blocks, mask_magics
from .correction import CorrectionLoop, CorrectionResult, RoundReport, reprompt_text
from .findings import Finding, format_findings
from .metrics import FunctionInfo, architecture_summary, outline
from .static import analyze_python
from .testgen import test_skeleton
from .tracebacks import Frame, ParsedError, StaticDiagnosis, explain_error, parse_traceback

__all__ = [
    "CodeBlock",
    "CorrectionLoop",
    "CorrectionResult",
    "Finding",
    "Frame",
    "FunctionInfo",
    "MaskedCell",
    "ParsedError",
    "RoundReport",
    "StaticDiagnosis",
    "analyze_python",
    "architecture_summary",
    "explain_error",
    "extract_code_blocks",
    "format_findings",
    "mask_magics",
    "outline",
    "parse_traceback",
    "reprompt_text",
    "test_skeleton",
]
