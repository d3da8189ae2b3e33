"""The sort task (deterministic, sorted targets, banded groups) and the Transformer and CNN models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ablate.run.data.samplers import IIDBatchSampler
from ablate.run.data.sequence import group_bands, make_sort_task
from ablate.run.models.nets import CNN, Block, Transformer


def sort_task(seed: int = 0, n_groups: int = 4):
    return make_sort_task(seed, n_train=2000, n_eval=500, seq_len=10, vocab_size=16, n_groups=n_groups)


def test_sort_task_is_deterministic_from_the_seed() -> None:
    a, b, c = sort_task(0), sort_task(0), sort_task(1)
    for name in ("train_x", "train_y", "train_group", "eval_x", "eval_y", "eval_group"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.train_x, c.train_x) and not torch.equal(a.eval_x, c.eval_x)
    assert not torch.equal(a.train_x[:500], a.eval_x)  # held-out split is a separate draw


def test_sort_task_shapes_dtypes_and_sorted_targets() -> None:
    d = sort_task()
    assert d.name == "sort" and d.n_classes == 16 and d.n_features == 10 and d.n_train == 2000
    assert d.train_x.shape == d.train_y.shape == (2000, 10) and d.eval_x.shape == d.eval_y.shape == (500, 10)
    assert d.train_group.shape == (2000,) and d.eval_group.shape == (500,)
    for t in (d.train_x, d.train_y, d.train_group, d.eval_x, d.eval_y, d.eval_group):
        assert t.dtype == torch.int64
    for x, y in ((d.train_x, d.train_y), (d.eval_x, d.eval_y)):
        assert torch.equal(y, x.sort(dim=1).values)
        assert x.min() >= 0 and x.max() < 16


def test_group_bands_formula() -> None:
    # slices of width V/G = 4, widened by 2 on each side, clipped to [0, 16)
    assert group_bands(16, 4) == [(0, 6), (2, 10), (6, 14), (10, 16)]
    assert group_bands(16, 1) == [(0, 16)]
    assert group_bands(10, 3) == [(0, 5), (1, 9), (5, 10)]  # outward rounding: floor(5/6), ceil(25/6) ...
    for vocab, groups in ((16, 4), (10, 3), (7, 7), (4, 16)):
        bands = group_bands(vocab, groups)
        assert len(bands) == groups and all(0 <= lo < hi <= vocab for lo, hi in bands)
        assert set().union(*(range(lo, hi) for lo, hi in bands)) == set(range(vocab))
    with pytest.raises(ValueError, match="n_groups"):
        group_bands(16, 0)


def test_tokens_of_group_g_lie_in_band_g_and_groups_are_uniform() -> None:
    d = make_sort_task(3, n_train=8000, n_eval=100, seq_len=6, vocab_size=16, n_groups=4)
    for g, (lo, hi) in enumerate(group_bands(16, 4)):
        members = d.train_x[d.train_group == g]
        assert members.min() == lo and members.max() == hi - 1  # the whole band is used, nothing outside
        assert torch.bincount(members.flatten() - lo).min() > 0.8 * members.numel() / (hi - lo)  # ~uniform
    shares = torch.bincount(d.train_group, minlength=4).float() / 8000
    assert (shares - 0.25).abs().max() < 0.025  # 5 standard deviations of a share (sqrt(.25 * .75 / 8000))
    assert set(d.eval_group.tolist()) <= set(range(4))


def small_transformer(norm_position: str, **kwargs: int) -> Transformer:
    torch.manual_seed(0)
    sizes = {"vocab_size": 16, "seq_len": 10, "d_model": 32, "n_heads": 2, "n_layers": 2, **kwargs}
    return Transformer(norm_position=norm_position, **sizes)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_transformer_gives_per_position_logits(norm_position: str) -> None:
    model = small_transformer(norm_position)
    x = torch.randint(0, 16, (5, 10))
    logits = model(x)
    assert logits.shape == (5, 10, 16) and logits.dtype == torch.float32
    y = x.sort(1).values  # the training loop's loss and accuracy work on [B, L, V] logits as they are
    assert F.cross_entropy(logits.flatten(0, -2), y.flatten()).isfinite()
    assert 0 <= (logits.argmax(-1) == y).float().mean() <= 1


def test_transformer_attention_is_bidirectional() -> None:
    """Changing the last token changes the logits at the first position (no causal mask)."""
    model = small_transformer("pre").eval()
    x = torch.randint(0, 16, (1, 10))
    x2 = x.clone()
    x2[0, -1] = (x[0, -1] + 1) % 16
    assert not torch.allclose(model(x)[0, 0], model(x2)[0, 0])


def test_pre_and_post_ln_differ_in_structure() -> None:
    pre, post = small_transformer("pre"), small_transformer("post")
    assert isinstance(pre.final_norm, torch.nn.LayerNorm) and isinstance(post.final_norm, torch.nn.Identity)
    assert [type(m) for m in pre.blocks] == [Block, Block] and all(b.norm_position == "post" for b in post.blocks)
    # same parameter shapes apart from the final LayerNorm
    assert sum(p.numel() for p in pre.parameters()) == sum(p.numel() for p in post.parameters()) + 2 * 32

    def block_outputs(model: Transformer) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = []
        hooks = [b.register_forward_hook(lambda _m, _i, out: outs.append(out.detach())) for b in model.blocks]
        model(torch.randint(0, 16, (8, 10)))
        for h in hooks:
            h.remove()
        return outs

    # post-LN: every block ends in LayerNorm (weight 1, bias 0 at init), so each token is mean 0, std 1
    for out in block_outputs(post):
        assert torch.allclose(out.mean(-1), torch.zeros(8, 10), atol=1e-5)
        assert torch.allclose(out.std(-1, unbiased=False), torch.ones(8, 10), atol=1e-3)
    # pre-LN: the residual stream is never normalised (embeddings N(0,1) plus branch outputs)
    for out in block_outputs(pre):
        assert (out.std(-1, unbiased=False) - 1).abs().mean() > 0.1


def test_transformer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="norm_position"):
        small_transformer("middle")
    with pytest.raises(ValueError, match="divisible"):
        small_transformer("pre", d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="length 10"):
        small_transformer("pre")(torch.zeros(2, 9, dtype=torch.long))


def test_cnn_on_flattened_8x8_images() -> None:
    torch.manual_seed(0)
    model = CNN(64, 10, [8, 16])
    assert model(torch.randn(7, 64)).shape == (7, 10)
    assert model.head.in_features == 16 * 4 * 4  # two same-size convs, one 2x2 pool: 8x8 -> 4x4
    assert [type(m) for m in model.features] == [
        torch.nn.Conv2d,
        torch.nn.ReLU,
        torch.nn.Conv2d,
        torch.nn.ReLU,
        torch.nn.MaxPool2d,
    ]
    assert CNN(144, 3, [4, 4], image_size=12)(torch.randn(2, 144)).shape == (2, 3)


def test_cnn_rejects_wrong_input_size() -> None:
    with pytest.raises(ValueError, match="8x8 images flattened to 64 features, got in_features=32"):
        CNN(32, 10, [8, 16])
    with pytest.raises(ValueError, match="two conv widths"):
        CNN(64, 10, [8])


def test_pre_ln_transformer_learns_to_sort() -> None:
    """A few seconds of Adam: held-out token accuracy far above chance (1/16) and the per-position guess."""
    data = make_sort_task(0, n_train=4096, n_eval=512, seq_len=8, vocab_size=16, n_groups=4)
    torch.manual_seed(0)
    model = Transformer(16, 8, d_model=32, n_heads=2, n_layers=2, norm_position="pre")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sampler = IIDBatchSampler(data.n_train, 64, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: one thread is as fast, and immune to a busy second core stalling a pool
    try:
        for step in range(150):
            for group in opt.param_groups:
                group["lr"] = 3e-3 * min(1.0, (step + 1) / 20)
            idx = sampler.batch(step)
            loss = F.cross_entropy(model(data.train_x[idx]).flatten(0, -2), data.train_y[idx].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        acc = (model.eval()(data.eval_x).argmax(-1) == data.eval_y).float().mean().item()
    assert acc > 0.5, acc  # about 0.91 with seeds 0-2; chance 0.0625, the per-position guess about 0.12


def test_reverse_task_targets_are_the_reversed_inputs() -> None:
    data = make_sort_task(0, 16, 8, 5, 10, 2, task="reverse")
    assert torch.equal(data.train_y, data.train_x.flip(1)) and data.name == "reverse"


def test_lm_format_is_x_sep_y_scored_on_y_only() -> None:
    data = make_sort_task(0, 16, 8, 5, 10, 2, task="sort", fmt="lm")
    x, y = data.train_x, data.train_y
    assert x.shape == y.shape == (16, 10) and data.n_classes == 11  # 2L positions; vocabulary + SEP
    assert (x[:, 5] == 10).all()  # SEP after the L input tokens
    assert (y[:, :5] == -100).all()  # the prompt is not scored
    assert torch.equal(y[:, 5:], torch.sort(x[:, :5], dim=1).values)  # the answer: sort(x)
    assert torch.equal(x[:, 6:], y[:, 5:-1])  # teacher forcing: the input is the target shifted by one


def test_causal_attention_cannot_see_the_future() -> None:
    torch.manual_seed(0)
    model = Transformer(8, 6, 16, 2, 2, "pre", ffn_width=24, causal=True).eval()
    x = torch.randint(0, 8, (3, 6))
    changed = x.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 8  # change only the last two positions
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)  # earlier positions do not see the change
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    assert model.blocks[0].mlp[0].out_features == 24  # ffn_width


def test_scored_loss_and_accuracy_skip_ignored_targets() -> None:
    from ablate.run import objective

    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]]])  # predicts 0, 1, 0
    y = torch.tensor([[-100, 1, 1]])  # first position not scored; 1 right, 1 wrong of the scored
    assert objective.accuracy("classification", logits, y).item() == pytest.approx(0.5)
    assert objective.per_example_correct("classification", logits, y).tolist() == [0.5]
    expected = (F.cross_entropy(logits[0, 1:], y[0, 1:], reduction="sum") / 2).item()
    assert objective.per_example_loss("classification", logits, y).item() == pytest.approx(expected)
    assert objective.loss("classification", logits, y).item() == pytest.approx(expected)
