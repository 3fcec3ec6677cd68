"""Third-party flavors: an entry point in group ``modelreg.flavors``, installed at test time.

The plug-in is a real distribution on ``sys.path`` (a ``.dist-info`` folder with its
``entry_points.txt``), found by ``importlib.metadata`` as pip-installed ones are.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg.flavors import _base, flavor_names, get_flavor, open_version

PLUGIN = '''
import json
from pathlib import Path


class Rules:
    """A tiny rule model: predicts 1 when a column passes its threshold."""

    def __init__(self, column, threshold):
        self.column, self.threshold = column, threshold


class RulesFlavor:
    name = "rules"

    def handles(self, obj):
        return isinstance(obj, Rules)

    def save(self, obj, folder):
        (folder / "rules.json").write_text(json.dumps([obj.column, obj.threshold]))
        return {"format": "rules-json", "files": ["rules.json"], "libraries": {}}

    def load(self, folder, info):
        return Rules(*json.loads((Path(folder) / "rules.json").read_text()))

    def predict(self, native, data):
        return [int(v > native.threshold) for v in data[native.column]]


class NotAFlavor:
    pass
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rules_flavor.py").write_text(PLUGIN)
    info = site / "rules_flavor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rules-flavor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [modelreg.flavors]
            rules = rules_flavor:RulesFlavor
            broken = rules_flavor:NotAFlavor
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    import rules_flavor  # type: ignore[import-not-found]

    yield rules_flavor
    for name in ("rules", "broken"):
        _base._cache.pop(name, None)


def test_a_plugin_flavor_is_detected_saved_and_loaded(
    plugin: object, sqlite_reg: modelreg.Registry
) -> None:
    pd = pytest.importorskip("pandas", reason="pandas is in the serve extra")
    assert "rules" in flavor_names()
    rules = plugin.Rules("age", 40)  # type: ignore[attr-defined]
    v = sqlite_reg.register("adults", model=rules, input_example={"age": [30.0, 50.0]})
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"]) == ("rules", "rules-json")
    assert v.framework == "rules"
    assert v.signature is not None
    assert v.signature["outputs"] == [{"name": None, "dtype": "int64", "shape": [-1]}]
    served = open_version(sqlite_reg, "adults:1")
    assert served.model.threshold == 40
    assert list(served.predict(pd.DataFrame({"age": [10, 90]}))) == [0, 1]
    assert list(served.warm()) == [0, 1]


def test_a_plugin_that_is_not_a_flavor_is_refused_and_skipped(
    plugin: object, sqlite_reg: modelreg.Registry
) -> None:
    with pytest.raises(modelreg.InvalidInput, match="does not implement the Flavor protocol"):
        get_flavor("broken")
    with pytest.warns(UserWarning, match="flavor plug-in 'broken' cannot be used"):
        v = sqlite_reg.register("plain", model={"a": 1})
    assert v.flavor is not None
    assert v.flavor["name"] == "pickle"
