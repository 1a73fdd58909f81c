"""The command line, run as a user runs it (a subprocess)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cost(62)  # seconds on 2 idle cores: scheduled by it


def kgrec(*args, check=True):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "kgrec.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"kgrec {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_lists_every_command():
    out = kgrec("--help").stdout
    for cmd in ("quickstart", "data", "train", "evaluate", "recommend", "config"):
        assert cmd in out


def test_config_shows_a_models_options_and_sets_them_as_train_does():
    """`kgrec config --model M` prints M's own options section, and `--set model.M.<field>`
    works there as in `kgrec train` (it was refused, naming the flat field)."""
    import yaml

    for model, field, value in (("hgnn", "id_dropout", 0.25), ("xsimgcl", "eps", 0.3)):
        out = kgrec("config", "--model", model, "--set", f"model.{model}.{field}={value}")
        section = yaml.safe_load(out.stdout)["model"]
        assert section["name"] == model and section[model][field] == value


def test_data_list_and_stats():
    out = kgrec("data", "list").stdout
    # piped, nothing is cut (rich cut names at 80 columns: `amazon-cdr-phone-…`)
    assert "amazon-cdr-phone-sport " in out and "…" not in out
    assert "with the same 4,998 users" in out
    out = kgrec("data", "stats", "lastfm-hetrec-kg").stdout
    assert "21173" in out and "15518" in out
    (table,) = [json.loads(x) for x in kgrec("data", "stats", "lastfm-hetrec-kg", "--format",
                                             "json").stdout.splitlines() if x.startswith("{")]
    assert dict(table["rows"])["interactions"] == 21173
    tsv = kgrec("--format", "tsv", "data", "list").stdout.splitlines()
    assert tsv[0].split("\t") == ["name", "format", "folder", "description"]


def test_train_evaluate_recommend(tmp_path):
    run = tmp_path / "run"
    kgrec("train", "--dataset", "lastfm-hetrec-kg", "--model", "lightgcn", "--epochs", "5",
          "--out", str(run), "--quiet", "--set", "train.eval_every=5", "--device", "cpu")
    assert (run / "curves.png").is_file()
    ev = kgrec("evaluate", str(run), "--k", "10", "20").stdout
    assert "recall@20" in ev and "ndcg@10" in ev
    by = kgrec("evaluate", str(run), "--k", "20", "--by", "popularity", "--json",
               str(tmp_path / "m.json")).stdout
    assert all(g in by for g in ("head", "mid", "tail")), by
    groups = json.loads((tmp_path / "m.json").read_text())["groups"]
    assert list(groups)[:4] == ["test", "head", "mid", "tail"]  # (then cold/warm items)
    # every test user has a positive somewhere: the groups' users add up to at least all
    assert sum(groups[g]["users"] for g in ("head", "mid", "tail")) >= groups["test"]["users"]
    assert groups["head"]["metrics"]["recall@20"] > groups["tail"]["metrics"]["recall@20"]
    p = kgrec("evaluate", str(run), "--by", "domain", check=False)  # Last.FM: music only
    assert p.returncode == 2 and "two or more domains" in p.stderr
    rec = kgrec("recommend", str(run), "--user", "0", "--k", "3").stdout
    assert "top 3 for user 0" in rec
    # a user the model never saw, from two artists they listened to (ids 2 and 3)
    new = kgrec("recommend", str(run), "--items", "2", "3", "--k", "3", "--json",
                str(tmp_path / "r.json")).stdout
    assert "top 3 for user (new user)" in new
    (lists,) = json.loads((tmp_path / "r.json").read_text())
    assert lists["user"] == "(new user)" and len(lists["items"]) == 3
    assert lists["items"][0]["name"][:12] in new  # the same list as printed
    assert "Diary of Dreams" not in new and "Carpathian Forest" not in new  # theirs already
    p = kgrec("recommend", str(run), "--items", "2", "no-such-artist", check=False)
    assert p.returncode == 2 and "unknown item id 'no-such-artist'" in p.stderr
    p = kgrec("recommend", str(run), "--items", "2", "--profile", "age", check=False)
    assert p.returncode == 2 and "expected KEY=VALUE, got 'age'" in p.stderr
    p = kgrec("recommend", str(run), "--items", "2", "--profile", "age=30", check=False)
    assert p.returncode == 2 and "reads no user profiles" in p.stderr  # Last.FM users have none
    # a truncated model file is one line naming it, exit 2 (it was a traceback and exit 1)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    for cmd in (("evaluate", str(broken)), ("recommend", str(broken), "--user", "0")):
        p = kgrec(*cmd, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.startswith(f"kgrec: error: {weights}: damaged or truncated")
        assert len(p.stderr.strip().splitlines()) == 1


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    p = kgrec("data", "stats", "nope", check=False)
    assert p.returncode == 2 and "kgrec: error: unknown dataset 'nope'" in p.stderr
    assert "Traceback" not in p.stderr
    p = kgrec("train", "--set", "train.lr", check=False)
    assert p.returncode == 2 and "expected key=value" in p.stderr
    p = kgrec("evaluate", str(tmp_path), check=False)
    assert p.returncode == 2 and "not a saved recommender" in p.stderr


def test_cross_domain_train_and_evaluate_rebuild_the_same_split(tmp_path):
    run = tmp_path / "cdr"
    kgrec("train", "--dataset", "amazon-cdr-phone-sport", "--model", "mf", "--epochs", "1",
          "--split", "cross_domain", "--target", "sport", "--shots", "1", "--target-only",
          "--out", str(run), "--quiet", "--device", "cpu")
    cfg = (run / "config.yaml").read_text()
    assert "target: sport" in cfg and "target_only: true" in cfg
    # evaluate refuses a split that differs from the trained one; this one rebuilds
    ev = kgrec("evaluate", str(run), "--k", "20").stdout
    assert "cross_domain split" in ev and "recall@20" in ev
    p = kgrec("train", "--dataset", "amazon-cdr-phone-sport", "--split", "cross_domain",
              "--epochs", "1", check=False)
    assert p.returncode == 2 and "needs a target domain" in p.stderr


# A plug-in model trained, evaluated and used through the CLI (--plugin, $KGREC_PLUGINS):
# tests/test_newcomer.py, whose model lives in that test file alone.


def test_plugin_that_fails_to_import_is_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('no GPU here')\n")
    for args in (("--plugin", str(bad), "data", "list"), ("--plugin", "no_such_plugin", "train"),
                 ("--plugin", str(tmp_path / "missing.py"), "config")):
        p = kgrec(*args, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.startswith(f"kgrec: error: --plugin {args[1]}: "), p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    assert "RuntimeError: no GPU here" in kgrec(*("--plugin", str(bad), "data", "list"),
                                                 check=False).stderr

