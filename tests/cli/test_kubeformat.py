"""kubectl's text rules, as tables: ages, tabwriter alignment, describe labels, patches, docker config JSON."""

from __future__ import annotations

import base64
import calendar
import json
from typing import Any

import pytest

from xplane.cli.create import docker_config_json, go_json
from xplane.cli.describe import smart_label
from xplane.cli.kubeformat import age, human_duration, table, tabwrite
from xplane.cli.patching import PatchError, json_patch, merge_patch
from xplane.cli.printers import compile_path
from xplane.pkg.names import PACKAGE_RULE

M, H, D = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (3 * M + 12, "3m12s"),
        (9 * M + 59, "9m59s"),
        (10 * M + 30, "10m"),
        (179 * M, "179m"),
        (3 * H, "3h"),
        (5 * H + 10 * M, "5h10m"),
        (8 * H + 30 * M, "8h"),
        (47 * H, "47h"),
        (2 * D + 3 * H, "2d3h"),
        (3 * D, "3d"),
        (8 * D + 5 * H, "8d"),
        (400 * D, "400d"),
        (2 * 365 * D + 30 * D, "2y30d"),
        (3 * 365 * D, "3y"),
        (9 * 365 * D, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_of_timestamps() -> None:
    now = calendar.timegm((2026, 8, 6, 5, 46, 40, 0, 0, 0))
    assert age("2026-08-06T05:45:40Z", now) == "60s"
    assert age("2026-08-04T02:45:40Z", now) == "2d3h"
    assert age(None, now) == "<unknown>"
    assert age("not a time", now) == "<unknown>"


def test_tabwrite_aligns_blocks_like_go() -> None:
    lines = [
        ["Name:", "x"],
        ["Annotations:", "<none>"],
        ["Spec:"],
        ["  Package:", "p"],
        ["  Package Pull Policy:", "Never"],
    ]
    assert tabwrite(lines, padding=2).splitlines() == [
        "Name:         x",
        "Annotations:  <none>",
        "Spec:",
        "  Package:              p",
        "  Package Pull Policy:  Never",
    ]


def test_table_pads_three_spaces_and_leaves_the_last_column() -> None:
    assert table(["NAME", "AGE"], [["a", "5s"], ["longer-name", "10m"]]).splitlines() == [
        "NAME          AGE",
        "a             5s",
        "longer-name   10m",
    ]


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("apiVersion", "API Version"),
        ("uid", "UID"),
        ("creationTimestamp", "Creation Timestamp"),
        ("packagePullPolicy", "Package Pull Policy"),
        ("ownerReferences", "Owner References"),
        ("resolvedImageURL", "Resolved Image URL"),
        (".dockerconfigjson", ".dockerconfigjson"),
        ("pkg.crossplane.io/package", "pkg.crossplane.io/package"),
    ],
)
def test_smart_label(key: str, label: str) -> None:
    assert smart_label(key) == label


@pytest.mark.parametrize(
    ("path", "obj", "value"),
    [
        (".spec.package", {"spec": {"package": "p"}}, "p"),
        (".spec.missing", {"spec": {}}, None),
        (
            ".status.conditions[?(@.type=='Healthy')].status",
            {
                "status": {
                    "conditions": [
                        {"type": "Installed", "status": "True"},
                        {"type": "Healthy", "status": "False"},
                    ]
                }
            },
            "False",
        ),
        (".status.conditions[?(@.type=='Healthy')].status", {"status": {"conditions": []}}, None),
        (".spec.items[1]", {"spec": {"items": ["a", "b"]}}, "b"),
        (".spec[bad", {"spec": 1}, None),
    ],
)
def test_printer_column_paths(path: str, obj: dict[str, Any], value: Any) -> None:
    assert compile_path(path)(obj) == value


@pytest.mark.parametrize(
    ("target", "patch", "result"),  # RFC 7386 appendix A
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_json_patch_operations() -> None:
    doc = {"spec": {"a": 1, "list": [1, 2]}}
    ops = [
        {"op": "add", "path": "/spec/b", "value": 2},
        {"op": "replace", "path": "/spec/a", "value": 3},
        {"op": "add", "path": "/spec/list/-", "value": 4},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "copy", "from": "/spec/a", "path": "/spec/c"},
        {"op": "move", "from": "/spec/b", "path": "/spec/d"},
        {"op": "test", "path": "/spec/d", "value": 2},
    ]
    assert json_patch(doc, ops) == {"spec": {"a": 3, "c": 3, "d": 2, "list": [2, 4]}}
    assert doc == {"spec": {"a": 1, "list": [1, 2]}}
    for bad in (
        [{"op": "replace", "path": "/spec/zz", "value": 1}],
        [{"op": "test", "path": "/spec/a", "value": 2}],
        [{"op": "remove", "path": "/spec/list/9"}],
        [{"op": "frobnicate", "path": "/spec"}],
        {"op": "add"},
    ):
        with pytest.raises(PatchError):
            json_patch(doc, bad)


def test_docker_config_json_is_what_kubectl_writes() -> None:
    got = docker_config_json("registry.example.com", "u", "p<&>", "me@example.com")
    auth = base64.b64encode(b"u:p<&>").decode()
    assert got.decode() == (
        '{"auths":{"registry.example.com":{"username":"u","password":"p\\u003c\\u0026\\u003e",'
        f'"email":"me@example.com","auth":"{auth}"}}}}}}'
    )
    assert json.loads(got)["auths"]["registry.example.com"]["password"] == "p<&>"
    assert b"email" not in docker_config_json("r.io", "u", "p", None)
    assert go_json({"k": "ü"}) == '{"k":"ü"}'


@pytest.mark.parametrize(
    ("package", "accepted"),
    [
        ("registry.example.com/upbound/platform-ref-aws:v0.6.0", True),
        ("xpkg.crossplane.io/crossplane-contrib/function-go-templating:v0.9.0", True),
        ("registry.example.com/repo/package@sha256:" + "a" * 64, True),
        ("127.0.0.1:5000/x/y:v1", True),
        ("platform-ref-aws", False),
        ("localhost:5000/x:y", False),
        ("registry.example.com/repo/package", False),
    ],
)
def test_package_cel_rule(package: str, accepted: bool) -> None:
    assert bool(PACKAGE_RULE.match(package)) is accepted
