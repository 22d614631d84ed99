"""The config schema: values are read as YAML 1.2 scalars and checked against each field's declared type."""

import pytest
import yaml

from glit.config import Config, apply, load_config, read_yaml
from glit.errors import GlitError
from glit.folder import read_config


@pytest.mark.parametrize("assignment, key, value", [
    ("train.lr=6e-2", "lr", 0.06),          # YAML 1.1 would read the string "6e-2"
    ("train.lr=1", "lr", 1.0),              # an integer is a number
    ("data.cache=no", "cache", "no"),       # YAML 1.1 would read False
    ("aug.flip=false", "flip", False),
    ("search.max_macs=1800000", "max_macs", 1800000),
    ("search.max_macs=1.8M", "max_macs", "1.8M"),
])
def test_set_values_are_yaml_1_2_scalars_of_the_declared_type(assignment, key, value):
    cfg = load_config("demo", None, [assignment])
    section = getattr(cfg, assignment.split(".")[0])
    assert getattr(section, key) == value and type(getattr(section, key)) is type(value)


@pytest.mark.parametrize("assignment, message", [
    ("train.epochs=true", "train.epochs must be an integer, got True"),
    ("train.epochs=2.5", "train.epochs must be an integer, got 2.5"),
    ("aug.flip=yes", "aug.flip must be true or false, got 'yes'"),
    ("data.cache=true", "data.cache must be a string, got True"),
    ("run.truth=[a]", "run.truth must be a string or null, got ['a']"),
    ("search.local_ops=conv1d", "search.local_ops must be a list, got 'conv1d'"),
])
def test_a_value_of_another_type_is_refused_naming_the_key(assignment, message):
    with pytest.raises(GlitError) as err:
        load_config("demo", None, [assignment])
    assert str(err.value) == f"--set {assignment.split('=')[0]}: {message}"


def test_a_yaml_file_names_itself_and_the_key(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("aug:\n  flip: on\n")
    with pytest.raises(GlitError, match=rf"^{file}: aug.flip must be true or false, got 'on'$"):
        load_config(None, str(file))


@pytest.mark.parametrize("preset", ["demo", "cifar", "tiny", "small", "base"])
def test_each_preset_round_trips_through_its_stored_yaml(preset):
    cfg = load_config(preset)
    assert apply(Config(), read_yaml(cfg.to_yaml()), "config.yaml") == cfg


def test_a_retired_key_reads_from_an_old_run_config_only_at_its_off_value(tmp_path):
    """``search.topk_retrain_epochs`` (retired for the finalist round): a run folder written before holds it at 0 and
    still reads, as the same config; any other value is refused, naming the key and its replacement."""
    cfg = load_config("cifar")
    data = cfg.to_dict()
    data["search"]["topk_retrain_epochs"] = 0
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump(data))
    assert read_config(old).to_dict() == cfg.to_dict()
    data["search"]["topk_retrain_epochs"] = 2
    old.write_text(yaml.safe_dump(data))
    with pytest.raises(GlitError, match=r"config.yaml: search.topk_retrain_epochs was retired \(search.finalists"):
        read_config(old)
