"""Strict params loading: unknown keys, wrong types and impossible values name the key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alseg_utils.config import RunConfig, config_from_dict, load_config, read_params
from alseg_utils.errors import ConfigError

PARAMS = Path(__file__).resolve().parents[1] / "params"


@pytest.mark.parametrize("name", ["quick.yaml", "quick_isic.yaml", "quick_dominant.yaml", "glas.yaml", "isic.yaml"])
def test_shipped_params_files_load(name: str) -> None:
    cfg = load_config(PARAMS / name)
    raw = read_params(PARAMS / name)
    assert isinstance(cfg, RunConfig) and cfg.name == raw["name"]
    for section, values in raw.items():  # every value of the file reaches its field unchanged
        for key, value in (values.items() if isinstance(values, dict) else ()):
            assert getattr(getattr(cfg, section), key) == value, f"{section}.{key}"
    assert cfg.data_root() == (PARAMS / raw["data"]["root"]).resolve()  # relative to the params file


def test_quick_dominant_is_quick_with_its_own_name_and_strategies() -> None:
    """Its step 0 must be the main job's: everything results depend on, but the name, is quick.yaml's."""
    assert "base" in yaml.safe_load((PARAMS / "quick_dominant.yaml").read_text())
    quick, dominant = load_config(PARAMS / "quick.yaml"), load_config(PARAMS / "quick_dominant.yaml")
    a, b = quick.fingerprint_dict(), dominant.fingerprint_dict()
    assert (a.pop("name"), b.pop("name")) == ("quick", "quick_dominant") and a == b
    assert dominant.sweep.strategies == ["superpixel_dominant"] and dominant.sweep.full_data_reference is False
    assert dominant.sweep.acquisitions == quick.sweep.acquisitions and dominant.sweep.seeds == quick.sweep.seeds


def test_base_file_is_laid_under_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"name": "b", "data": {"root": "data/x", "n_val": 3}, "train": {"batch_size": 2, "flips": False}}))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(
        {"base": "base.yaml", "name": "c", "data": {"n_val": 5}, "active": {"steps": 2}}))
    cfg = load_config(tmp_path / "child.yaml", {"train.batch_size": 3})
    assert cfg.name == "c" and (cfg.data.n_val, cfg.active.steps) == (5, 2)
    assert (cfg.train.batch_size, cfg.train.flips) == (3, False)  # the override beats both files
    assert cfg.data_root() == (tmp_path / "data" / "x").resolve()
    assert "base" not in read_params(tmp_path / "child.yaml")


def test_base_in_another_folder_keeps_its_paths_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "shared" / "base.yaml").write_text(yaml.safe_dump({"name": "b", "data": {"root": "../data/x"}}))
    (tmp_path / "mine" / "child.yaml").write_text(yaml.safe_dump({"base": "../shared/base.yaml", "name": "c"}))
    assert load_config(tmp_path / "mine" / "child.yaml").data_root() == (tmp_path / "data" / "x").resolve()
    (tmp_path / "mine" / "own.yaml").write_text(yaml.safe_dump(
        {"base": "../shared/base.yaml", "name": "c", "data": {"root": "here"}}))  # its own root: relative to it
    assert load_config(tmp_path / "mine" / "own.yaml").data_root() == (tmp_path / "mine" / "here").resolve()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"c.yaml": {"base": "nope.yaml", "name": "c"}}, "nope.yaml not found"),
        ({"c.yaml": {"base": 3, "name": "c"}}, "base: expected the file name"),
        ({"c.yaml": {"base": "b.yaml"}, "b.yaml": {"name": "b"}}, "must set its own name"),
        ({"c.yaml": {"base": "b.yaml", "name": "c"}, "b.yaml": {"base": "c.yaml", "name": "b"}}, "cycle"),
        ({"c.yaml": {"base": "c.yaml", "name": "c"}}, "cycle"),
        ({"c.yaml": {"base": "b.yaml", "name": "c"}, "b.yaml": {"trian": {}}}, "trian"),
    ],
)
def test_bad_base_is_one_clear_error(tmp_path: Path, files: dict, message: str) -> None:
    for name, raw in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message) as err:
        load_config(tmp_path / "c.yaml")
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)  # one line naming a file


def test_paper_settings_in_glas_yaml() -> None:
    cfg = load_config(PARAMS / "glas.yaml")
    assert cfg.model.encoder == "resnetv2_50" and cfg.model.pretrained is True and cfg.model.dropout == 0.5
    assert cfg.model.dropout_stages == [3, 4] and cfg.model.output_stride == 16
    assert cfg.data.image_size == [528, 784] and cfg.data.resize == "pad"
    assert (cfg.active.region_size, cfg.active.region_stride, cfg.active.regions_per_step) == (150, 30, 20)
    assert (cfg.active.mc_samples, cfg.active.images_per_step, cfg.active.steps) == (30, 5, 10)
    assert (cfg.active.restarts_full, cfg.active.restarts_region) == (3, 4)
    assert cfg.train.crop_size == [480, 480] and cfg.train.batch_size == 5


def test_relative_root_resolves_against_params_file(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "p.yaml"
    f.parent.mkdir()
    f.write_text(yaml.safe_dump({"data": {"root": "../mydata"}}))
    assert load_config(f).data_root() == (tmp_path / "mydata").resolve()


def _write(tmp_path: Path, raw: dict) -> Path:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(raw))
    return f


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"trian": {}}, "trian"),
        ({"train": {"batchsize": 4}}, "batchsize"),
        ({"train": {"batch_size": "five"}}, "train.batch_size"),
        ({"train": {"batch_size": 2.5}}, "train.batch_size"),
        ({"train": {"flips": 1}}, "train.flips"),
        ({"active": {"mc_samples": 0}}, "active.mc_samples"),
        ({"active": {"regions_per_step": 0}}, "active.regions_per_step"),
        ({"active": {"images_per_step": -1}}, "active.images_per_step"),
        ({"active": {"object_threshold": 1.5}}, "active.object_threshold"),
        ({"active": {"acquisition": "bold"}}, "active.acquisition"),
        ({"active": {"region_size": 600}}, "active.region_size"),
        ({"data": {"image_size": [-1, 10]}}, "data.image_size"),
        ({"data": {"image_size": [10]}}, "data.image_size"),
        ({"model": {"encoder": "resnet51"}}, "model.encoder"),
        ({"model": {"dropout": 1.0}}, "model.dropout"),
        ({"eval": {"targets": {"f1": [80]}}}, "eval.targets.f1"),
        ({"sweep": {"strategies": ["fulll"]}}, "sweep.strategies"),
    ],
)
def test_bad_values_name_key_and_file(tmp_path: Path, raw: dict, key: str) -> None:
    f = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    message = str(err.value)
    assert key in message and str(f) in message
    assert "\n" not in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "x.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_overrides_and_fingerprint(tmp_path: Path) -> None:
    f = _write(tmp_path, {"name": "x"})
    a = load_config(f, {"active.seed": 3, "active.strategy": "full"})
    assert a.active.seed == 3 and a.active.strategy == "full"
    b = load_config(f, {"active.seed": 4, "active.strategy": "full"})
    assert a.fingerprint() != b.fingerprint()
    c = config_from_dict({"name": "x", "active": {"seed": 3, "strategy": "full"}, "train": {"progress": False}})
    assert c.fingerprint() == a.fingerprint()  # progress switches and source do not change results
    with pytest.raises(ConfigError, match="active.seed"):
        load_config(f, {"active.seed": "three"})


def test_superpixel_dominant_is_a_strategy_name_for_superpixels_labelled_by_class(tmp_path: Path) -> None:
    f = _write(tmp_path, {"name": "x", "active": {"strategy": "superpixel_dominant"}})
    cfg = load_config(f)
    assert (cfg.active.strategy, cfg.active.superpixel_label) == ("superpixel", "dominant")
    assert cfg.active.method_name() == "superpixel_dominant"
    stored = {k: v for k, v in cfg.to_dict().items() if k != "source"}
    again = config_from_dict(stored)  # what a run folder stores reads back the same
    assert again.fingerprint() == cfg.fingerprint() and again.active.method_name() == "superpixel_dominant"
    # an override of the strategy (a sweep job, `alseg run --strategy`) replaces the name and its label
    for name, label in (("superpixel", "mask"), ("region", "mask"), ("superpixel_dominant", "dominant")):
        job = load_config(f, {"active.strategy": name})
        assert job.active.superpixel_label == label and job.active.method_name() == name
    assert load_config(f, {"active.strategy": "superpixel"}).fingerprint() != cfg.fingerprint()
    explicit = load_config(_write(tmp_path, {"active": {"strategy": "superpixel", "superpixel_label": "dominant"}}))
    assert explicit.active.method_name() == "superpixel_dominant"
    assert RunConfig().active.superpixel_label == "mask" and RunConfig().active.method_name() == "region"
    sweep = load_config(_write(tmp_path, {"sweep": {"strategies": ["full", "superpixel_dominant"]}}))
    assert sweep.sweep.strategies == ["full", "superpixel_dominant"]


@pytest.mark.parametrize(("active", "message"), [
    ({"superpixel_label": "majority"}, "'majority' is not one of mask, dominant"),
    ({"strategy": "region", "superpixel_label": "dominant"}, "but active.strategy is 'region'"),
    ({"strategy": "full", "superpixel_label": "dominant"}, "set active.strategy: superpixel"),
    ({"strategy": "superpixel_dominat"}, "not one of full, region, superpixel, superpixel_dominant"),
])
def test_bad_superpixel_labels_are_one_line_errors(tmp_path: Path, active: dict, message: str) -> None:
    f = _write(tmp_path, {"active": active})
    with pytest.raises(ConfigError, match=message) as err:
        load_config(f)
    key = "active.strategy" if "strategy" in active and "superpixel_label" not in active else "active.superpixel_label"
    assert key in str(err.value) and str(f) in str(err.value) and "\n" not in str(err.value)


def test_dominant_superpixels_may_have_their_own_segment_area(tmp_path: Path) -> None:
    raw = {"data": {"image_size": [64, 96]}, "train": {"crop_size": []},
           "active": {"region_size": 16, "dominant_superpixel_pixels": 64}}
    f = _write(tmp_path, raw)
    assert load_config(f, {"active.strategy": "superpixel_dominant"}).active.superpixel_area() == 64
    assert load_config(f, {"active.strategy": "superpixel"}).active.superpixel_area() == 256  # region_size ** 2
    raw["active"]["superpixel_pixels"] = 100
    assert load_config(_write(tmp_path, raw), {"active.strategy": "superpixel_dominant"}).active.superpixel_area() == 64
    raw["active"]["dominant_superpixel_pixels"] = 0  # 0: the superpixels' own area
    assert load_config(_write(tmp_path, raw), {"active.strategy": "superpixel_dominant"}).active.superpixel_area() == 100
    raw["active"]["dominant_superpixel_pixels"] = 64 * 96 + 1
    with pytest.raises(ConfigError, match="active.dominant_superpixel_pixels: superpixels of 6145 px are larger"):
        load_config(_write(tmp_path, raw), {"active.strategy": "superpixel_dominant"})
    raw["active"]["dominant_superpixel_pixels"] = -1
    with pytest.raises(ConfigError, match="active.dominant_superpixel_pixels: must be >= 0"):
        load_config(_write(tmp_path, raw))
