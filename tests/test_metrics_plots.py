import numpy as np
import torch
from matplotlib.figure import Figure

from tlcourse import metrics, plots
from tlcourse.engine import History


def test_metrics_from_logits_and_labels():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    target = torch.tensor([0, 1, 1, 1])
    assert metrics.accuracy(logits, target) == 0.75
    report = metrics.per_class_report(logits, target, ["cat", "dog"])
    assert report.loc["cat", "recall"] == 1.0 and abs(report.loc["dog", "recall"] - 2 / 3) < 1e-9
    assert metrics.confusion(logits, target).tolist() == [[1, 0], [1, 2]]
    assert 0 < metrics.macro_f1(logits, target) < 1


def test_plots_return_figures():
    h = History(
        [
            {
                "epoch": 1,
                "train_loss": 1.0,
                "val_loss": 1.2,
                "train_accuracy": 0.5,
                "val_accuracy": 0.4,
            },
            {
                "epoch": 2,
                "train_loss": 0.5,
                "val_loss": 0.9,
                "train_accuracy": 0.8,
                "val_accuracy": 0.6,
            },
        ]
    )
    assert isinstance(plots.learning_curves(h), Figure)
    assert isinstance(plots.confusion_matrix(np.eye(3) * 5, ["a", "b", "c"]), Figure)
    imgs = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    fig = plots.image_grid(imgs, titles=list("abcde"), ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert isinstance(plots.curves([1, 2], {"x": [0.1, 0.2]}, "labels", "acc"), Figure)


def test_unnormalise_for_display():
    x = torch.zeros(1, 3, 2, 2)
    out = plots.to_displayable(x, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    assert out.shape == (1, 2, 2, 3) and np.allclose(out, 0.5)


def test_most_confident_mistakes_orders_by_confidence_and_plots():
    logits = torch.tensor([[4.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0]])
    targets = torch.tensor([1, 1, 1, 1])
    table = metrics.most_confident_mistakes(logits, targets, k=5, class_names=["a", "b"])
    assert table["index"].tolist() == [0, 2] and table["predicted"].tolist() == ["a", "a"]
    assert table["confidence"].is_monotonic_decreasing
    data = [(torch.rand(3, 8, 8), 1) for _ in range(4)]
    assert isinstance(plots.mistakes_grid(data, table), Figure)
