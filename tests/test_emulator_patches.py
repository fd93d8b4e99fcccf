"""The emulator's patches behind one seam: each names what it replaces and the shape it expects,
so a moto or werkzeug release that moves a method fails here, naming the patch, instead of
making the embedded backend slower or wrong without a word."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from semichat.emulator import patches
from semichat.emulator.patches import PatchMismatch, Target, mismatches

ROOT = Path(__file__).resolve().parents[1]


def test_every_patch_finds_the_shape_it_expects() -> None:
    assert mismatches() == []


def test_the_patched_libraries_are_the_versions_tested_and_pinned() -> None:
    assert patches.installed_versions() == patches.TESTED
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split("==")[0].split("[")[0].lower(): d.split("==")[1] for d in deps if "==" in d}
    assert {name: pins.get(name) for name in patches.TESTED} == patches.TESTED


def test_a_moved_parameter_or_a_missing_method_names_its_patch() -> None:
    changed = {
        "a query reads one page by key": [
            Target("moto.dynamodb.models.table", "Table", "query", ("self", "hash_key")),
        ],
        "host lookup kept": [
            Target("moto.moto_server.werkzeug_app", "DomainDispatcherApplication", "gone", ()),
        ],
    }
    found = mismatches(changed)
    assert len(found) == 2
    assert found[0].startswith("patch 'a query reads one page by key': ")
    assert "Table.query is now ('self', 'hash_key', 'range_comparison'" in found[0]
    assert found[1] == (
        "patch 'host lookup kept': "
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication.gone is gone"
    )


def test_apply_refuses_a_library_whose_shape_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = Target("moto.sqs.models", "Queue", "delete_message", ("self",))
    monkeypatch.setattr(patches, "PATCHES", {"recently deleted handles only": [wrong]})
    with pytest.raises(PatchMismatch, match="recently deleted handles only"):
        patches.apply()


def test_what_moto_answered_with_is_freed_once_nothing_holds_it() -> None:
    # moto lists every model instance it creates for its dashboard; patched, an item copied into
    # a query's answer or a message copied into a receive's is garbage once answered.
    import copy
    import gc
    import weakref

    from moto.dynamodb.models.dynamo_type import Item
    from moto.sqs.models import Message

    patches.apply()
    item = Item(None, None, {"k": {"S": "v"}})
    held = Item.instances_tracked[:]  # type: ignore[attr-defined]
    refs = [weakref.ref(copy.deepcopy(item)), weakref.ref(Message("m", "body"))]
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert Item.instances_tracked == held  # type: ignore[attr-defined]
