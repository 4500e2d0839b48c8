"""Static (runs everywhere): the Railway-images override covers every Railway Dockerfile of a compose
service and names files that exist, so the Docker tier's boot test cannot silently test less."""
from __future__ import annotations

import yaml

from tests.harness import compose
from tests.railway.railwaylib import DEPLOYS


class _Loader(yaml.SafeLoader):
    pass


# Compose's merge tags: keep the value, remember the tag.
_Loader.add_constructor("!reset", lambda loader, node: {"!reset": loader.construct_sequence(node)
                                                         if isinstance(node, yaml.SequenceNode) else None})
_Loader.add_constructor("!override", lambda loader, node: {"!override": loader.construct_sequence(node)})


def test_override_covers_every_railway_dockerfile():
    doc = yaml.load((compose.ROOT / "tests/docker/railway-images.compose.yml").read_text(), Loader=_Loader)
    raw = compose.load_compose()
    over = doc["services"]
    assert set(over) <= set(raw["services"]), set(over) - set(raw["services"])
    for name, dep in DEPLOYS.items():
        if not dep.dockerfile:
            continue
        built = raw["services"][name].get("build", {})
        if built.get("dockerfile") == dep.dockerfile:
            assert name in over and "volumes" in over[name], f"{name}: override must drop the config mounts"
            continue
        assert name in over, f"{name}: Railway builds {dep.dockerfile}, the override does not run it"
        assert over[name]["build"]["dockerfile"] == dep.dockerfile
        assert (compose.ROOT / dep.dockerfile).exists()
        assert over[name]["pull_policy"] == "build"
        vols = over[name].get("volumes", {})
        kept = (vols.get("!override") or []) if isinstance(vols, dict) else vols
        assert not [v for v in kept if v.startswith("./") and not v.startswith("./secrets:")], \
            f"{name}: the Railway image bakes its configs; mount only volumes and secrets"
