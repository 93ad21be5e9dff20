"""`askshift ask` on tiny image folders written here: layouts, errors, the verdict's rules, the
support split against known membership, order independence, and the page."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from askshift.cli import main as cli
from askshift.data.imagesets import ImageSetError, check_images, iter_batches, label_codes, list_images
from askshift.methods import verdict as V
from askshift.study.ask import AskOptions, ask, share_interval

ROOT = Path(__file__).resolve().parents[1]


def digit_like(rng, label: int, tint=None, flip: bool = False, size: int = 32) -> np.ndarray:
    """A grey stroke image whose bar position encodes the label (0: left, 1: right), with noise."""
    img = rng.integers(0, 40, (size, size), dtype=np.uint8)
    lo = 6 + 12 * label + int(rng.integers(-2, 3))
    img[4:28, lo:lo + 6] = 200 + rng.integers(0, 55)
    rgb = np.repeat(img[..., None], 3, axis=2).astype(float)
    if tint is not None:
        rgb = 0.5 * rgb + 0.5 * np.asarray(tint, float)
    if flip:
        rgb = rgb[::-1]
    return rgb.clip(0, 255).astype(np.uint8)


def write_folder(root: Path, images: list[np.ndarray], labels: list[int] | None, start: int = 0) -> Path:
    for i, (img, lab) in enumerate(zip(images, labels or [None] * len(images))):
        d = root / (f"class{lab}" if lab is not None else "")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"img{start + i:04d}.png")
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small model saved in the pipeline's format (random weights: the pixels carry the signal)."""
    from askshift.nn import models

    path = tmp_path_factory.mktemp("model") / "model.pt"
    m = models.create_model("resnet10t", 10, seed=0, channels=[8, 8, 8, 8], stem_width=8)
    models.save_model(m, path)
    return path


def make_sets(tmp_path: Path, n: int = 160, kind: str = "same", seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = list(rng.integers(0, 2, n))
    ref = write_folder(tmp_path / "ref", [digit_like(rng, y) for y in labels], labels)
    sl = list(rng.integers(0, 2, n))
    if kind == "same":
        imgs = [digit_like(rng, y) for y in sl]
    elif kind == "tint":
        imgs = [digit_like(rng, y, tint=(255, 0, 0)) for y in sl]
    elif kind == "mixture":   # first half in support, second half red
        imgs = [digit_like(rng, y, tint=(255, 0, 0) if i >= n // 2 else None) for i, y in enumerate(sl)]
    sh = write_folder(tmp_path / "shifted", imgs, sl)
    return ref, sh


def opts(model_file, **kw) -> AskOptions:
    return AskOptions(model=str(model_file), features="both", k=5, effect=False, progress=False, n_boot=200, **kw)


# ------------------------------------------------------------------ layouts and errors
def test_layouts_sorted_and_labelled(tmp_path):
    rng = np.random.default_rng(0)
    write_folder(tmp_path / "f", [digit_like(rng, 1)] * 2, [1, 1])
    write_folder(tmp_path / "f", [digit_like(rng, 0)] * 2, [0, 0], start=2)
    s = list_images(tmp_path / "f", "reference")
    assert s.layout == "imagefolder" and s.classes == ["class0", "class1"]
    assert [p.name for p in s.paths] == ["img0002.png", "img0003.png", "img0000.png", "img0001.png"]
    flat = write_folder(tmp_path / "flat", [digit_like(rng, 0)] * 3, None)
    assert list_images(flat).labels is None and list_images(flat).layout == "folder"
    table = pd.DataFrame({"path": ["f/class1/img0001.png", "f/class0/img0002.png"], "label": ["b", "a"]})
    table.to_csv(tmp_path / "t.csv", index=False)
    t = list_images(tmp_path / "t.csv")
    assert [str(p.relative_to(tmp_path)) for p in t.paths] == ["f/class0/img0002.png", "f/class1/img0001.png"]
    assert t.labels == ["a", "b"]
    table.to_parquet(tmp_path / "t.parquet")
    assert list_images(tmp_path / "t.parquet").labels == ["a", "b"]


def test_clear_errors_before_any_work(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageSetError, match=r"--shifted .*empty: no images found"):
        list_images(tmp_path / "empty", "shifted")
    with pytest.raises(ImageSetError, match="does not exist"):
        list_images(tmp_path / "nope", "reference")
    mixed = write_folder(tmp_path / "mixed", [digit_like(rng, 0)], None)
    write_folder(mixed, [digit_like(rng, 0)], [0])
    with pytest.raises(ImageSetError, match="both images at its top level .* and class folders"):
        list_images(mixed)
    pd.DataFrame({"file": ["a.png"]}).to_csv(tmp_path / "nopath.csv", index=False)
    with pytest.raises(ImageSetError, match=r"no 'path' column \(columns: file\)"):
        list_images(tmp_path / "nopath.csv")
    pd.DataFrame({"path": ["missing.png"]}).to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(ImageSetError, match="1 listed file.* do not exist, e.g. .*missing.png"):
        list_images(tmp_path / "missing.csv")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageSetError, match="expected an image folder or a .csv / .parquet table"):
        list_images(tmp_path / "notes.txt")


def test_bad_images_stop_or_skip_and_foreign_labels(tmp_path):
    rng = np.random.default_rng(0)
    ref = write_folder(tmp_path / "ref", [digit_like(rng, y) for y in (0, 1, 0, 1)], [0, 1, 0, 1])
    (ref / "class0" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageSetError, match=r"1 file\(s\) are not readable images, e\.g\. .*broken\.png.*--on-bad-image skip"):
        check_images(list_images(ref, "reference"), "stop", "reference")
    s = check_images(list_images(ref, "reference"), "skip", "reference")
    assert len(s) == 4 and s.bad[0][0].endswith("broken.png") and s.sizes.tolist() == [[32, 32]] * 4
    assert next(iter_batches(s, 16, batch_size=3)).shape == (3, 16, 16, 3)
    sh = write_folder(tmp_path / "sh", [digit_like(rng, 0)], [7])
    with pytest.raises(ImageSetError, match=r"--shifted .*label\(s\) 'class7' are not classes of the reference"):
        label_codes(s, list_images(sh))


def test_sizes_are_reported_and_resized(tmp_path):
    d = tmp_path / "sizes"
    d.mkdir()
    Image.new("RGB", (64, 32), (255, 0, 0)).save(d / "a.png")
    Image.new("L", (300, 900), 128).save(d / "b.jpg")
    s = check_images(list_images(d))
    assert s.size_summary() == {"width": [64, 182, 300], "height": [32, 466, 900], "area_ratio": 131.8359375}
    from askshift.study.ask import size_warnings

    small = check_images(list_images(write_folder(tmp_path / "small", [np.zeros((32, 32, 3), np.uint8)], None)))
    warn = size_warnings(s, small, 32)
    assert len(warn) == 2 and "largest / smallest area 132x" in warn[0] and "differs 133x" in warn[1]
    assert size_warnings(small, small, 32) == []
    batch = next(iter_batches(s, 32))
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.uint8
    assert (batch[0] == [255, 0, 0]).all() and (batch[1] == 128).all()


# ------------------------------------------------------------------ the verdict's rules
def test_verdict_thresholds():
    assert V.support_kind(0.02, 0.0, 0.05, 500)[0] == "in-support"
    assert V.support_kind(0.95, 0.9, 0.99, 500)[0] == "out-of-support"
    assert V.support_kind(0.3, 0.25, 0.35, 500)[0] == "mixed"
    assert V.support_kind(0.3, 0.05, 0.6, 500)[0] == "too weak to say"
    assert V.support_kind(0.0, 0.0, 0.0, 20)[0] == "too weak to say"
    row = {"er": 0.1, "er_low": 0.05, "er_high": 0.15, "r2": 0.9, "n_baseline": 9}
    v = V.decide(0.95, 0.9, 0.99, 500, 0.99, {"all": {"ft": row}, "out": {"ft": {**row, "er_low": -0.01}}})
    assert v.kind == "out-of-support" and "FT on the whole shifted set: ER +10.0 pp" in v.measured[0]
    assert "a gain" in v.measured[0] and "no significant effect" in v.measured[1]
    assert "do not show the expected gain" in v.measured[-1]
    assert "De-bias or curate" in V.decide(0.01, 0.0, 0.03, 500, 0.55).advice[0]
    v = V.decide(0.01, 0.0, 0.03, 500, 0.55, {"all": {"ft": row}})
    assert v.kind == "in-support" and "Unlike the rule of thumb" in v.measured[-1]


def test_share_interval_covers_the_share():
    oos = np.r_[np.ones(30), np.zeros(70)].astype(bool)
    s = share_interval(oos, np.arange(100) % 5, n_boot=500, seed=0)
    assert s["share"] == 0.3 and s["low"] < 0.3 < s["high"] and s["high"] - s["low"] < 0.25
    assert s["fold_min"] <= 0.3 <= s["fold_max"]


# ------------------------------------------------------------------ the answer on known shifts
@pytest.mark.parametrize("kind, expect", [("same", "in-support"), ("tint", "out-of-support")])
def test_known_shifts_get_the_right_verdict(tmp_path, model_file, kind, expect):
    ref, sh = make_sets(tmp_path, kind=kind)
    result, table = ask(str(ref), str(sh), opts(model_file))
    share = result["support"]["out_of_support"]["share"]
    assert result["verdict"]["kind"] == expect, (share, result["verdict"])
    assert (share <= V.IN_SUPPORT_MAX) if kind == "same" else (share >= 0.9)
    assert len(table) == 160 and set(table.columns) == {"path", "label", "log_ratio", "out_of_support"}


def test_mixture_membership_and_order_independence(tmp_path, model_file):
    from askshift.methods.split import auroc

    ref, sh = make_sets(tmp_path, n=400, kind="mixture")     # at 160 per set the split is too unsure (see below)
    result, table = ask(str(ref), str(sh), opts(model_file))
    truth = table["path"].map(lambda p: int(Path(p).stem[3:]) >= 200).to_numpy()
    assert auroc(-table["log_ratio"].to_numpy(), truth) >= 0.9
    assert 0.35 <= result["support"]["out_of_support"]["share"] <= 0.65
    # the same files listed in another order (a shuffled table) give the same answer
    rows = pd.DataFrame({"path": table["path"], "label": table["label"]}).sample(frac=1.0, random_state=3)
    rows.to_csv(tmp_path / "shuffled.csv", index=False)
    again, table2 = ask(str(ref), str(tmp_path / "shuffled.csv"), opts(model_file))
    assert again["support"] == result["support"]
    np.testing.assert_array_equal(table2["log_ratio"], table["log_ratio"])
    assert result["verdict"]["kind"] == "mixed"
    # 160 images per set: the folds disagree (shares 12-62%), and the verdict says it cannot tell
    ref, sh = make_sets(tmp_path / "small", n=160, kind="mixture")
    small, _ = ask(str(ref), str(sh), opts(model_file))
    assert small["verdict"]["kind"] == "too weak to say", small["support"]


def test_cli_writes_the_page_and_json(tmp_path, model_file, capsys):
    ref, sh = make_sets(tmp_path, n=60, kind="tint")
    out = tmp_path / "answer"
    assert cli(["ask", "--reference", str(ref), "--shifted", str(sh), "--out", str(out), "--model", str(model_file),
                "--k", "3", "--no-effect"]) == 0
    result = json.loads((out / "ask.json").read_text())
    page = (out / "ask.html").read_text()
    assert result["verdict"]["kind"] == "out-of-support"
    assert result["verdict"]["headline"] in page and "data:image/png;base64," in page
    assert "Not measured: switched off (--no-effect)" in page
    assert len(pd.read_csv(out / "ratios.csv")) == 60
    assert "Out-of-support shift" in capsys.readouterr().out
    # bad input: one line naming the option, nothing written
    shutil.rmtree(out)
    assert cli(["ask", "--reference", str(tmp_path / "nope"), "--shifted", str(sh), "--out", str(out),
                "--model", str(model_file)]) == 2
    assert "--reference" in capsys.readouterr().err and not out.exists()
    assert cli(["ask", "--reference", str(ref), "--shifted", str(sh), "--model", str(tmp_path / "m.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ImageSetError, match="--model nope.pt: no such file"):   # checked before any image is read
        AskOptions(model="nope.pt").check()


def test_effect_part_trains_and_measures_er(tmp_path, model_file):
    """The effect part on a tiny labelled pair, with a smoke-sized copy of the study's recipes."""
    from tests.smoke import SMOKE, set_params

    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    set_params(params, {**SMOKE, "compute.threads": 1})
    ref, sh = make_sets(tmp_path, n=120, kind="mixture")
    result, _ = ask(str(ref), str(sh), AskOptions(model=str(model_file), k=3, progress=False, n_boot=100,
                                                  params_file=str(params)))
    e = result["effect"]
    assert e["n_train"] + e["n_val"] + e["n_test"] == 120
    assert {m["model"] for m in e["models"]} >= {"pretrained/ft", "pretrained/lpft", "baseline/full-e4"}
    assert set(e["er"]["all"]) == {"ft", "lpft"}
    assert all(np.isfinite(r["er"]) and r["er_low"] <= r["er"] <= r["er_high"] for r in e["er"]["all"].values())
    assert result["verdict"]["measured"]


def test_a_timm_model_from_a_local_file(tmp_path, monkeypatch):
    """timm:<name.tag>@file: the model's own input size (160 for test_resnet.r160_in1k) and
    normalisation; the effect part is skipped with its reason (it trains at the pipeline's size)."""
    import timm
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.save(timm.create_model("test_resnet", num_classes=1000).state_dict(), tmp_path / "w.pth")
    ref, sh = make_sets(tmp_path, n=40, kind="tint")
    o = AskOptions(model=f"timm:test_resnet.r160_in1k@{tmp_path / 'w.pth'}", k=3, progress=False, n_boot=50)
    result, _ = ask(str(ref), str(sh), o)
    assert result["model"] == "timm test_resnet.r160_in1k at 160x160"
    assert "not such a model" in result["effect_skipped"] and "effect" not in result
    with pytest.raises(ImageSetError, match="is not a timm model with a pretrained config"):
        ask(str(ref), str(sh), AskOptions(model="timm:nosuchnet.x", k=3, progress=False))


# ------------------------------------------------------------------ the ask stage (dvc.yaml)
def test_example_export_reads_back_as_the_same_labelled_images(tmp_path, monkeypatch):
    """`ask_example` writes a curated dataset as an ImageFolder tree that `ask` reads back:
    same images, same labels, nothing half-written when it fails."""
    from askshift.data.store import Dataset
    from askshift.study.ask_example import export_images

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(12) % 3
    meta = pd.DataFrame({"index": range(12), "label": labels, "class_name": [f"c{y}" for y in labels],
                         "group": labels, "split": "test", "source": "fixture"})
    dest = tmp_path / "ref"
    assert export_images(Dataset(images, meta), dest) == 12
    back = list_images(str(dest), "reference")
    assert back.classes == ["c0", "c1", "c2"] and len(back) == 12
    for path, label in zip(back.paths, back.labels):
        i = int(Path(path).stem)
        assert np.array_equal(np.asarray(Image.open(path)), images[i]) and label == f"c{labels[i]}"
    real, calls = Image.Image.save, []

    def disk_full_after_five(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise OSError("No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", disk_full_after_five)
    with pytest.raises(OSError):                       # a failed export: the old tree stays, no scratch left
        export_images(Dataset(images[::-1].copy(), meta), dest)
    assert len(list_images(str(dest), "reference")) == 12 and [p.name for p in tmp_path.iterdir()] == ["ref"]


def test_stage_messages_name_params_keys_and_metrics_hold_no_counts():
    from askshift.study.ask_stage import as_params, headline

    assert as_params("--shifted /x: does not exist; use --on-bad-image skip") == \
        "ask.shifted /x: does not exist; use ask.on_bad_image skip"
    result = {"verdict": {"kind": "mixed"}, "support": {"domain_auroc": 0.7, "n_reference": 5, "n_shifted": 3,
                                                        "out_of_support": {"share": 0.5, "low": 0.4, "high": 0.6}},
              "effect": {"er": {"all": {"ft": {"er": 0.1, "er_low": 0.0, "er_high": 0.2, "r2": 0.9}}, "in": {}}}}
    h = headline(result)
    assert h == {"ask": {"verdict": "mixed", "out_of_support": {"share": 0.5, "low": 0.4, "high": 0.6},
                         "domain_auroc": 0.7, "er": {"all": {"ft": {"er": 0.1, "er_low": 0.0, "er_high": 0.2}}}}}


def test_the_ask_stage_lists_its_page_template_and_its_paths_come_from_params(tmp_path):
    """dvc.yaml as the tests and the report read it resolves ``${key}`` from params.yaml, as
    DVC does (``${item}`` of foreach stages and unknown keys are left alone)."""
    from askshift.report import ask_page
    from askshift.study.dvcfile import expanded_stages, read_dvc_yaml

    assert "${ask.reference}" in read_dvc_yaml(ROOT / "dvc.yaml")["stages"]["ask"]["deps"]   # not resolved unasked
    deps = expanded_stages(read_dvc_yaml(ROOT / "dvc.yaml", ROOT / "params.yaml"))["ask"]["deps"]
    assert (ask_page.TEMPLATES / "ask.html.j2").relative_to(ROOT).as_posix() in deps
    assert {"data/ask/reference", "data/ask/shifted", "models/pretrain/model.pt"} <= set(deps)
    (tmp_path / "params.yaml").write_text("a:\n  b: /x/y\n  n: 3\n  flag: true\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    deps: ['${a.b}', '${a.n}/z', '${a.flag}', '${nope}']\n"
                                       "  e:\n    foreach: [p, q]\n    do:\n      deps: ['${item}-${a.b}']\n")
    stages = expanded_stages(read_dvc_yaml(tmp_path / "dvc.yaml", tmp_path / "params.yaml"))
    assert stages["s"]["deps"] == ["/x/y", "3/z", "${a.flag}", "${nope}"]
    assert stages["e@p"]["deps"] == ["p-/x/y"] and stages["e@q"]["deps"] == ["q-/x/y"]


def test_params_schema_offers_the_commands_choices():
    """params.py (kept free of the ask command's imports) spells the choices out: they must be
    the command's own."""
    from askshift.data.imagesets import ON_BAD
    from askshift.study.ask import FEATURES
    from askshift.study.ask_stage import PRETRAINED
    from askshift.study.params import SCHEMA, ParamsError, _ask_checks

    assert SCHEMA["ask"]["features"].choices == FEATURES and SCHEMA["ask"]["on_bad_image"].choices == ON_BAD
    assert set(SCHEMA["split"]["features"].choices) == set(FEATURES)
    ok = {"model": PRETRAINED, "reference": "data/ask/reference", "shifted": "data/ask/shifted"}
    _ask_checks({"ask": ok})
    with pytest.raises(ParamsError):
        _ask_checks({"ask": {**ok, "model": PRETRAINED + "x"}})
