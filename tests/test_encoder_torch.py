"""Parity with PyTorch's nn.TransformerEncoder (post-LN, exact GELU) given the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.encoder import layers as L
from embedkit.encoder import network as N

torch = pytest.importorskip("torch", reason="torch not installed: parity test skipped "
                                            "(pip install torch==2.13.0)")


def torch_encoder(params, cfg):
    layer = torch.nn.TransformerEncoderLayer(
        cfg["dim"], cfg["heads"], cfg["ffn"], dropout=0.0, activation="gelu",
        layer_norm_eps=L.LN_EPS, batch_first=True, norm_first=False)
    enc = torch.nn.TransformerEncoder(layer, cfg["layers"], enable_nested_tensor=True)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    with torch.no_grad():
        for i, lay in enumerate(enc.layers):
            p = {k[len(f"l{i}."):]: v for k, v in params.items() if k.startswith(f"l{i}.")}
            lay.self_attn.in_proj_weight.copy_(t(p["qkv_w"].T))
            lay.self_attn.in_proj_bias.copy_(t(p["qkv_b"]))
            lay.self_attn.out_proj.weight.copy_(t(p["o_w"].T))
            lay.self_attn.out_proj.bias.copy_(t(p["o_b"]))
            lay.linear1.weight.copy_(t(p["ff1_w"].T))
            lay.linear1.bias.copy_(t(p["ff1_b"]))
            lay.linear2.weight.copy_(t(p["ff2_w"].T))
            lay.linear2.bias.copy_(t(p["ff2_b"]))
            lay.norm1.weight.copy_(t(p["ln1_g"]))
            lay.norm1.bias.copy_(t(p["ln1_b"]))
            lay.norm2.weight.copy_(t(p["ln2_g"]))
            lay.norm2.bias.copy_(t(p["ln2_b"]))
    return enc.eval()


def make(objective, seed=0):
    cfg = dict(vocab=50, dim=32, heads=4, layers=2, ffn=64, max_len=16, positions="sinusoidal",
               objective=objective)
    rng = np.random.default_rng(seed)
    params = N.init_params(cfg, rng)
    for name in params:  # realistic, non-trivial weights: scale up so attention is not uniform
        params[name] = (params[name] + rng.standard_normal(params[name].shape) * 0.2
                        ).astype(np.float32)
    ids = rng.integers(0, 50, (3, 16))
    keep = np.ones((3, 16), bool)
    keep[1, 10:] = False
    keep[2, 3:] = False
    return cfg, params, ids, keep


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("fast_path", [True, False])
def test_forward_matches_torch_with_padding(fast_path):
    cfg, params, ids, keep = make("mlm")
    ours, _ = N.forward(params, cfg, ids, keep)
    x = L.embed_forward(ids, params["wte"], N.positions(params, cfg, 16))
    enc = torch_encoder(params, cfg)
    ctx = torch.inference_mode() if fast_path else torch.no_grad()
    with ctx:
        theirs = enc(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(~keep)).numpy()
    assert np.abs(ours[keep] - theirs[keep]).max() < 1e-4
    assert np.abs(ours[keep]).max() > 0.5  # a real comparison, not of near-zeros


def test_causal_forward_matches_torch():
    cfg, params, ids, _ = make("clm", seed=1)
    keep = np.ones(ids.shape, bool)
    ours, _ = N.forward(params, cfg, ids, keep)
    x = L.embed_forward(ids, params["wte"], N.positions(params, cfg, 16))
    enc = torch_encoder(params, cfg)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(16)
    with torch.no_grad():
        theirs = enc(torch.from_numpy(x), mask=mask, is_causal=True).numpy()
    assert np.abs(ours - theirs).max() < 1e-4
