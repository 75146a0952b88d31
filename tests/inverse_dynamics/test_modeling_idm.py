from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from inverse_dynamics.configuration_idm import IDMConfig
from inverse_dynamics.modeling_idm import InverseDynamicsModel

TINY = {"image_size_px": 32, "conv_channels": (8, 16), "hidden_dim": 32}


def _model(**overrides: object) -> InverseDynamicsModel:
    torch.manual_seed(0)
    model = InverseDynamicsModel(IDMConfig(**{**TINY, **overrides}))
    model.set_normalization(
        state_mean_rad=torch.linspace(-0.5, 0.5, 6),
        state_std_rad=torch.full((6,), 0.3),
        action_mean_rad=torch.linspace(-0.4, 0.6, 6),
        action_std_rad=torch.full((6,), 0.25),
    )
    return model.eval()


def _frames(batch: int, k: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, k, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("head", ["regression", "flow"])
def test_output_is_an_action_chunk_in_radians(head: str) -> None:
    model = _model(head=head, frame_stride=3, num_input_frames=3)
    out = model.predict_actions(_frames(5, k=3), torch.zeros(5, 6))
    assert out.shape == (5, 3, 6)
    assert torch.isfinite(out).all()
    # Untrained outputs stay within a few action std of the action mean: proof that the
    # result is un-normalised into radians rather than left in normalised units.
    assert ((out - model.action_mean).abs() / model.action_std).max() < 10


def test_normalisation_round_trip_and_std_floor() -> None:
    model = _model()
    actions = torch.randn(4, 4, 6)
    torch.testing.assert_close(model.unnormalize_actions(model.normalize_actions(actions)), actions)
    model.set_normalization(torch.zeros(6), torch.zeros(6), torch.zeros(6), torch.ones(6))
    assert model.state_std.min().item() == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="nan"):
        model.set_normalization(
            torch.full((6,), float("nan")), torch.ones(6), torch.zeros(6), torch.ones(6)
        )


def test_state_residual_with_zero_head_returns_the_state() -> None:
    """A chunk is predicted as a residual on the current state (regression head)."""
    model = _model()
    torch.nn.init.zeros_(model.head[-1].weight)
    torch.nn.init.zeros_(model.head[-1].bias)
    state = torch.tensor([[0.1, -0.2, 0.3, 0.0, 1.0, 0.5]])
    out = model.predict_actions(_frames(1), state)
    torch.testing.assert_close(out, state[:, None].expand(1, 4, 6))
    no_state = model.predict_actions(_frames(1), None)
    torch.testing.assert_close(no_state, model.action_mean.expand(1, 4, 6))


@pytest.mark.parametrize("head", ["regression", "flow"])
def test_save_and_load_round_trip(tmp_path: Path, head: str) -> None:
    model = _model(head=head)
    model.save_pretrained(tmp_path / "idm")
    loaded = InverseDynamicsModel.from_pretrained(tmp_path / "idm")
    assert loaded.config == model.config
    torch.testing.assert_close(loaded.action_std, model.action_std)
    x, s = _frames(2), torch.zeros(2, 6)
    a = model.predict_actions(x, s, generator=torch.Generator().manual_seed(3))
    b = loaded.predict_actions(x, s, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    # Saving again over an existing directory replaces it cleanly.
    model.save_pretrained(tmp_path / "idm")
    assert sorted(p.name for p in (tmp_path / "idm").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pickle", "model.pkl", "model.pt"])
def test_loading_refuses_pickles_naming_them(tmp_path: Path, name: str) -> None:
    model = _model()
    model.save_pretrained(tmp_path / "idm")
    (tmp_path / "idm" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "idm" / name)
    match = rf"found {re.escape(name)} in .*: pickled weights are refused, only safetensors"
    with pytest.raises(ValueError, match=match):
        InverseDynamicsModel.from_pretrained(tmp_path / "idm")


def test_a_pickle_beside_the_safetensors_is_refused_too(tmp_path: Path) -> None:
    _model().save_pretrained(tmp_path / "idm")
    (tmp_path / "idm" / "extra").mkdir()
    (tmp_path / "idm" / "extra" / "optimizer.PT").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match=r"found extra/optimizer\.PT in .*model\.safetensors"):
        InverseDynamicsModel.from_pretrained(tmp_path / "idm")


@pytest.mark.parametrize(
    ("frames", "state", "match"),
    [
        (_frames(2, k=3), None, r"frames must be \(B, 2, 3, 32, 32\), got \(2, 3, 3, 32, 32\)"),
        (_frames(2, size=64), None, r"got \(2, 2, 3, 64, 64\)"),
        (_frames(2), torch.zeros(2, 5), r"state_rad must be \(2, 6\), got \(2, 5\)"),
        (_frames(2), torch.full((2, 6), float("nan")), "NaN"),
        (_frames(2) * float("nan"), None, "NaN"),
    ],
)
def test_bad_inputs_get_clear_errors(
    frames: torch.Tensor, state: torch.Tensor | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _model().predict_actions(frames, state)


def test_resnet_preset_builds_and_runs_without_downloads() -> None:
    model = _model(encoder="resnet18", image_size_px=32)
    assert model.predict_actions(_frames(1), None).shape == (1, 4, 6)


def test_resnet_backbone_weights_must_be_local_safetensors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"found r18\.pth in .*: pickled weights are refused"):
        _model(encoder="resnet18", backbone_weights_path=str(tmp_path / "r18.pth"))
    with pytest.raises(ValueError, match=r"must be \.safetensors, got .*r18\.npz"):
        _model(encoder="resnet18", backbone_weights_path=str(tmp_path / "r18.npz"))
    with pytest.raises(FileNotFoundError, match=r"r18\.safetensors"):
        _model(encoder="resnet18", backbone_weights_path=str(tmp_path / "r18.safetensors"))
