"""DPN: Chen, Li, Xiao, Jin, Yan, Feng, "Dual Path Networks", NIPS 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(title="Dual Path Networks", authors="Chen, Li, Xiao, Jin, Yan, Feng", venue="NIPS 2017", arxiv="1707.01629")
TAG = "dpn131.mx_in1k"


@register_model(
    ModelInfo(
        name="dpn131",
        family="dpn",
        seed_name="DPN",
        paper=PAPER,
        variant="DPN-131 (Table 1), the paper's best single model",
        seed_result="79.0/94.5 matches no single-model row of Table 2 (DPN-92: 79.3/94.6, DPN-98: 79.8/94.8, "
        "DPN-131: 80.07/94.88 at 224x224) nor any other DPN figure found; the discrepancy is left as is, and "
        "the paper's best single model, DPN-131, is served",
        source="timm",
        library_id="timm:dpn131",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        paper_params=Figure(value=79.5e6, where="Table 2"),
        paper_macs=Figure(value=16.0e9, where="Table 2 (FLOPs)"),
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def dpn131(pretrained: bool = False) -> nn.Module:
    """DPN-131 of Table 1: dual-path blocks of 4, 8, 28 and 3 units, cardinality 40."""
    return timm_model(TAG, pretrained)
