"""tox.ini, the GitHub workflow and .ci/run agree on which environments exist."""

import configparser
import re

from harness import ROOT

AUXILIARY = ("harness", "site", "drift")  # environments that are not a Django x Python pair


def tox_envs():
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    return config["tox"]["env_list"].split()


def test_every_test_environment_names_a_django_series_and_a_python():
    for env in tox_envs():
        if env not in AUXILIARY:
            assert re.fullmatch(r"dj\d{2,3}-py3\d{2}", env), env


def test_each_environment_writes_a_results_file_named_after_it():
    text = (ROOT / "tox.ini").read_text()
    assert "--results .results/{envname}.json" in text


def test_workflow_factors_match_tox_environments():
    workflow = (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    factors = re.findall(r"factor: (py3\d+)", workflow)
    pythons = dict(re.findall(r'python: "(3\.\d+)"\s+factor: (py3\d+)', workflow))
    assert factors, "no factors in the workflow"
    env_pythons = {env.split("-")[1] for env in tox_envs() if env not in AUXILIARY}
    assert set(factors) == env_pythons, "a workflow job selects no environment, or one is missed"
    for python, factor in pythons.items():
        assert factor == "py" + python.replace(".", "")


def test_depends_of_drift_cover_every_test_environment():
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    depends = config["testenv:drift"]["depends"]
    match = re.fullmatch(r"dj\{([\d,]+)\}-py\{([\d,]+)\}", depends.strip())
    djs, pys = match.group(1).split(","), match.group(2).split(",")
    covered = {f"dj{d}-py{p}" for d in djs for p in pys}
    assert set(tox_envs()) - set(AUXILIARY) <= covered


def test_workflow_runs_the_auxiliary_environments():
    workflow = (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    for env in AUXILIARY:
        assert f"tox run -e {env}" in workflow


def test_each_patch_bound_a_record_names_is_run_before_and_at_it():
    """A rule like When(django="<5.0.3") says behaviour changed in 5.0.3: tox pins every release
    of the series up to it (dj500 to dj503: the range's first release, the one before the bound,
    the bound), and runs there exactly the modules whose records name a bound in that series.
    The series environments run only its latest patch."""
    from harness.claims import load_all
    from harness.results import patch_env_modules
    from harness.versions import _COMPARISON, parse

    modules, wanted = set(), set()
    for claim in load_all().values():
        for statement in claim.statements:
            for rule in statement.when:
                for part in filter(None, rule.django.split(",")):
                    major, minor, patch = parse(_COMPARISON.fullmatch(part.strip()).group(2))
                    if patch:
                        modules.add(claim.module.replace(".", "/") + ".py")
                        wanted |= {f"dj{major}{minor}{p}" for p in range(patch + 1)}
    pinned = {env.split("-")[0] for env in tox_envs() if re.fullmatch(r"dj\d{3}-py3\d{2}", env)}
    assert pinned == wanted, (
        f"tox.ini's patch-release environments: add {sorted(wanted - pinned)}, "
        f"remove {sorted(pinned - wanted)} (env_list, deps, [testenv:dj{{...}}])")
    assert patch_env_modules() == modules, (
        f"[testenv:dj{{...}}] commands: add {sorted(modules - patch_env_modules())}, "
        f"remove {sorted(patch_env_modules() - modules)}")
