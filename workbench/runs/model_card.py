"""MODEL_CARD.md: what a trained model is, what made it, and what it is not good for, in its run folder.

Everything on the card is read through the run's RunFolder (status, parameters, spec, metrics, data,
compute, environment, history, checkpoint config), so the card can never disagree with the run, and
can be rewritten for an old folder. Runs die part-way and folders are copied around: a missing or
unreadable file makes its section say "not recorded", never stops the card. The sections that depend
on the kind of run live in runs/card/ (pretraining.py, finetuning.py, and for runs on images
vision_pretraining.py, vision_finetuning.py), the others in card/common.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from workbench.files import atomic_write
from workbench.runs.card import audit, common
from workbench.runs.card.common import KindSections
from workbench.runs.card.finetuning import FinetuningSections
from workbench.runs.card.format import NOT_RECORDED
from workbench.runs.card.pretraining import OtherSections, PretrainingSections
from workbench.runs.card.vision_finetuning import VisionFinetuningSections
from workbench.runs.card.vision_pretraining import VisionPretrainingSections
from workbench.runs.outputs import MODEL_CARD_FILE
from workbench.runs.run_folder import FINETUNING, IMAGE, OTHER, PRETRAINING, VISION_PRETRAINING, RunFolder

__all__ = ["MODEL_CARD_FILE", "NOT_RECORDED", "SECTIONS", "model_card", "write_model_card"]

SECTIONS_BY_KIND: dict[str, type[KindSections]] = {
    PRETRAINING: PretrainingSections,
    VISION_PRETRAINING: VisionPretrainingSections,
    FINETUNING: FinetuningSections,
    OTHER: OtherSections,
}
IMAGE_SECTIONS: dict[str, type[KindSections]] = {FINETUNING: VisionFinetuningSections}  # the same kind, on images

Section = Callable[[RunFolder, KindSections], list[str]]
SECTIONS: tuple[tuple[str, Section], ...] = (
    ("Reproduce", lambda run, kind: common.reproduce(run)),
    ("Model", lambda run, kind: kind.model()),
    ("Data", lambda run, kind: kind.data()),
    ("Parameters", lambda run, kind: common.parameters(run)),
    ("Metrics", common.metrics),
    ("Training compute", common.compute),
    ("Environment", lambda run, kind: common.environment(run)),
    ("Privacy", lambda run, kind: audit.privacy(run)),
    ("Bias", lambda run, kind: audit.bias(run)),
    ("Intended use", lambda run, kind: kind.intended_use()),
    ("Known limitations", common.limitations),
)


def write_model_card(run_dir: str | Path) -> Path | None:
    """Write `run_dir/MODEL_CARD.md` (atomically) for a training run; None for a run that trained nothing.

    A training run is one with compute.json (pretraining and fine-tuning write it; a summary
    notebook does not).
    """
    run = RunFolder(run_dir)
    if not run.is_training_run:
        return None
    text = model_card(run)
    with atomic_write(run.model_card_path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return run.model_card_path


def model_card(run: str | Path | RunFolder) -> str:
    """The card's Markdown for one run folder."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    sections = IMAGE_SECTIONS.get(run.kind) if run.modality == IMAGE else None
    kind = (sections or SECTIONS_BY_KIND[run.kind])(run)
    lines = [f"# Model card: {run.path.name}", ""]
    lines += _guarded(lambda: common.summary(run, kind)) + [""]
    for title, build in SECTIONS:
        lines += [f"## {title}", "", *_guarded(lambda build=build: build(run, kind)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _guarded(build: Callable[[], list[str]]) -> list[str]:
    try:
        return build()
    except Exception as e:  # noqa: BLE001 - an odd file must cost one section, not the card
        return [f"Could not be read from this run folder ({type(e).__name__}: {e})."]
