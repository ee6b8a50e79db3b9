"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a teacher's soft targets train a student.

The teacher's logits are computed once and travel with the images (:class:`WithTeacher`); :func:`fit_student` trains the student on
``alpha * kd_loss + (1 - alpha) * cross-entropy``. With ``alpha = 0`` the same loop trains the
student alone on the hard labels: the fair baseline, at the same budget. Examples without a
label (target ``-1``) contribute only through the teacher.

Introduced in notebooks/08_fusion_and_distillation.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import Dataset

from tlcourse.engine import History
from tlcourse.progress import progress_bar

UNLABELLED = -1
"""Target of an example that has no label: it is learnt from the teacher only."""


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T² · KL(softmax(teacher / T) ‖ softmax(student / T))``, averaged over the batch.

    Both logits have shape ``(N, C)``. Softening with ``T > 1`` reveals the teacher's "dark
    knowledge" (which wrong classes it finds plausible); the ``T²`` factor keeps the gradient's
    scale roughly independent of ``T``. ``reduction="batchmean"`` is KL's true mean per example
    (``"mean"`` would also divide by C, a common bug).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"Student and teacher logits must have the same shape (N, C): "
            f"{tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}."
        )
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    p_teacher = F.softmax(teacher_logits.detach() / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_p_student, p_teacher, reduction="batchmean")


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * kd_loss + (1 - alpha) * cross-entropy`` on the labelled examples.

    ``targets`` ``(N,)`` holds class indices, or :data:`UNLABELLED` (-1) for examples that only
    the teacher supervises. ``alpha = 0`` is plain cross-entropy (the student alone).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha weighs the teacher's term and must be in [0, 1], got {alpha}.")
    labelled = targets != UNLABELLED
    hard = (
        F.cross_entropy(student_logits[labelled], targets[labelled])
        if labelled.any()
        else student_logits.sum() * 0.0
    )
    if alpha == 0.0:
        return hard
    soft = kd_loss(student_logits, teacher_logits, temperature)
    return alpha * soft + (1.0 - alpha) * hard


class WithTeacher(Dataset):
    """``dataset`` items ``(x, y)`` extended to ``(x, y, teacher_logits[i])``.

    Args:
        dataset: yields ``(x, y)``.
        logits: ``(len(dataset), C)`` teacher logits, in the dataset's order.
        labelled: ``False`` hides the labels (``y`` becomes :data:`UNLABELLED`): images that
            only the teacher annotates.
    """

    def __init__(self, dataset: Dataset, logits: torch.Tensor, labelled: bool = True) -> None:
        if len(dataset) != len(logits):  # type: ignore[arg-type]
            raise ValueError(
                f"One row of teacher logits per example: {len(dataset)} examples, "  # type: ignore[arg-type]
                f"{len(logits)} rows. Compute them with teacher_logits(...) over this dataset, "
                "unshuffled."
            )
        self.dataset, self.logits, self.labelled = dataset, logits, labelled

    def __len__(self) -> int:
        return len(self.logits)

    def __getitem__(self, i: int):
        x, y = self.dataset[i][:2]
        return x, (y if self.labelled else UNLABELLED), self.logits[i]


def fit_student(
    model: nn.Module,
    loader: Iterable,
    *,
    steps: int,
    lr: float,
    temperature: float = 4.0,
    alpha: float = 0.5,
    weight_decay: float = 1e-4,
    progress: bool | None = None,
) -> History:
    """Train ``model`` for ``steps`` batches ``(x, y, teacher_logits)`` of :func:`distillation_loss`.

    AdamW with a one-cycle schedule peaking at ``lr``, every parameter trained; the loader is
    restarted (reshuffled) when it runs out. The budget is counted in optimisation steps, so a
    student that sees more (unlabelled) images costs no more than one that sees fewer.
    ``alpha = 0`` ignores the teacher: the student-alone baseline (the same computation as
    ``engine.fit`` with a ``recipes.one_cycle`` schedule). Returns the mean training loss of
    each pass over ``loader`` in a :class:`History`.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    history, bar = History(), progress_bar(total=steps, enabled=progress, desc="distil")
    model.train()
    step, epoch = 0, 0
    while step < steps:
        total, count, epoch = 0.0, 0, epoch + 1
        for x, y, t in loader:
            loss = distillation_loss(model(x), t, y, temperature=temperature, alpha=alpha)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"The loss became {float(loss)} at step {step}: lower lr ({lr})."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, count, step = total + float(loss.detach()) * len(y), count + len(y), step + 1
            bar.update(1)
            if step == steps:
                break
        if count == 0:
            raise ValueError("The loader is empty: nothing to train on. Check the dataset.")
        history.rows.append({"epoch": epoch, "step": step, "train_loss": total / count})
    bar.close()
    model.eval()
    return history
