"""Bad input gets one KgrecError subclass naming file, line and field; nothing half-written."""

from pathlib import Path

import numpy as np
import pytest
import yaml

import kgrec
from kgrec.errors import ConfigError, DataFormatError, KgrecError
from kgrec.paths import home_dir
from tests.conftest import write_kgcn

GOOD = "0\t0\t1\n0\t1\t0\n1\t1\t1\n1\t2\t1\n2\t0\t1\n"


def test_good_tiny_dataset_loads(tmp_path):
    g = kgrec.load_recipe(write_kgcn(tmp_path / "ok", GOOD, kg="0\t0\t3\n1\t0\t3\n"))
    assert g.num_users == 3 and g.num_items == 3 and len(g.interactions) == 4
    assert len(g.knowledge()) == 2


def test_malformed_line_names_file_and_line(tmp_path):
    recipe = write_kgcn(tmp_path / "m", GOOD + "3\t1\n")
    with pytest.raises(DataFormatError) as err:
        kgrec.load_recipe(recipe)
    assert err.value.line == 6 and err.value.file.endswith("ratings.txt")
    assert "ratings.txt:6" in str(err.value) and "expected 3 fields" in str(err.value)


def test_non_integer_names_field(tmp_path):
    recipe = write_kgcn(tmp_path / "n", GOOD + "3\tabc\t1\n")
    with pytest.raises(DataFormatError, match=r"ratings.txt:6, field 'item': not an integer"):
        kgrec.load_recipe(recipe)


def test_id_out_of_range(tmp_path):
    recipe = write_kgcn(tmp_path / "r", GOOD + "2\t9\t1\n", item_ids="a\t0\nb\t1\nc\t2\n")
    with pytest.raises(DataFormatError, match=r"ratings.txt:6, field 'item': item 9 out of range"):
        kgrec.load_recipe(recipe)


def test_bad_label(tmp_path):
    recipe = write_kgcn(tmp_path / "l", GOOD + "2\t1\t7\n")
    with pytest.raises(DataFormatError, match=r"ratings.txt:6, field 'label'"):
        kgrec.load_recipe(recipe)


def test_missing_file_names_recipe_field(tmp_path):
    recipe = write_kgcn(tmp_path / "f", GOOD)
    doc = yaml.safe_load(recipe.read_text())
    doc["files"]["kg"] = "missing_kg.txt"
    recipe.write_text(yaml.safe_dump(doc))
    with pytest.raises(DataFormatError, match=r"missing_kg.txt: file not found \(recipe field "
                                              r"files.kg\)"):
        kgrec.load_recipe(recipe)


def test_missing_column(tmp_path):
    root = tmp_path / "ml"
    root.mkdir()
    (root / "movies.csv").write_text("movieId,title,genres\n1,A (1999),Drama\n")
    (root / "ratings.csv").write_text("userId,movieId,timestamp\n1,1,5\n")
    recipe = {"name": "mini-ml", "format": "movielens-csv", "path": str(root),
              "files": {"movies": "movies.csv", "ratings": "ratings.csv"}}
    with pytest.raises(DataFormatError, match=r"ratings.csv:1, field 'rating': missing column"):
        kgrec.load_recipe(recipe)


def test_nan_weight_names_line(tmp_path):
    root = tmp_path / "nan"
    root.mkdir()
    (root / "movies.csv").write_text("movieId,title,genres\n1,A (1999),Drama\n2,B,Comedy\n")
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n"
                                      "1,2,nan,6\n")
    recipe = {"name": "nan-ml", "format": "movielens-csv", "path": str(root),
              "files": {"movies": "movies.csv", "ratings": "ratings.csv"}}
    with pytest.raises(DataFormatError, match=r"ratings.csv:3, field 'rating': value 'nan' is "
                                              "not a finite number"):
        kgrec.load_recipe(recipe)


def test_unknown_movie_id(tmp_path):
    root = tmp_path / "unk"
    root.mkdir()
    (root / "movies.csv").write_text("movieId,title,genres\n1,A (1999),Drama\n")
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n1,42,3,6\n")
    recipe = {"name": "unk-ml", "format": "movielens-csv", "path": str(root),
              "files": {"movies": "movies.csv", "ratings": "ratings.csv"}}
    with pytest.raises(DataFormatError, match=r"ratings.csv:3, field 'movieId': unknown movie "
                                              "id '42'"):
        kgrec.load_recipe(recipe)


def test_empty_dataset(tmp_path):
    recipe = write_kgcn(tmp_path / "e", "0\t0\t0\n")  # only a negative: no interactions
    with pytest.raises(DataFormatError, match="no interactions"):
        kgrec.load_recipe(recipe)


def test_not_utf8_names_line(tmp_path):
    recipe = write_kgcn(tmp_path / "u", GOOD, names="id\tname\n0\tok\n",
                        item_ids="0\t0\n1\t1\n2\t2\n")
    (tmp_path / "u" / "names.tsv").write_bytes(b"id\tname\n0\tok\n1\t\xff\xfe\n")
    with pytest.raises(DataFormatError, match=r"names.tsv:3: not UTF-8"):
        kgrec.load_recipe(recipe)


def test_unknown_recipe_field_and_format(tmp_path):
    with pytest.raises(ConfigError, match="unknown field"):
        kgrec.load_recipe({"name": "x", "format": "kgcn", "path": str(tmp_path), "files": {},
                           "colour": "red"})
    with pytest.raises(ConfigError, match="unknown format 'parquet'"):
        kgrec.load_recipe({"name": "x", "format": "parquet", "path": str(tmp_path), "files": {}})


def test_failed_reparse_keeps_the_good_store(tmp_path):
    """A bad edit of a source file must not destroy (or half-replace) the stored graph."""
    recipe = write_kgcn(tmp_path / "keep", GOOD)
    good = kgrec.load_recipe(recipe)
    store_dir = home_dir() / "graphs" / good.name
    manifest = (store_dir / "manifest.json").read_text()
    (tmp_path / "keep" / "ratings.txt").write_text(GOOD + "broken line\n")
    with pytest.raises(KgrecError):
        kgrec.load_recipe(recipe)
    assert (store_dir / "manifest.json").read_text() == manifest
    leftovers = [p.name for p in store_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    again = kgrec.LocalStore(store_dir).read()
    assert np.array_equal(again.interactions.src, good.interactions.src)


def test_store_write_is_atomic_on_failure(tmp_path, lastfm):
    """If writing fails midway (here: an unstorable column), no directory is left behind."""
    from kgrec.graph import NodeTable, RecGraph

    nodes = dict(lastfm.nodes)
    nodes["Item"] = NodeTable(lastfm.items.ids, {**lastfm.items.attrs,
                                                 "blob": np.array([object()] * lastfm.num_items)})
    bad = RecGraph(nodes, lastfm.edges, "bad")
    target = tmp_path / "store"
    with pytest.raises(KgrecError):
        kgrec.LocalStore(target).write(bad)
    assert not target.exists()
    assert list(Path(tmp_path).iterdir()) == []


def test_every_bad_recipe_key_is_named_with_its_line(tmp_path):
    """A typo inside `mapping:` (`behavor`) used to be accepted silently."""
    root = tmp_path / "r"
    recipe = write_kgcn(root, GOOD)
    doc = yaml.safe_load(recipe.read_text())
    doc["mapping"]["behavor"] = "listen"
    doc["files"]["ratingz"] = "x.txt"
    doc["colour"] = "red"
    recipe.write_text(yaml.safe_dump(doc, sort_keys=False))
    lines = recipe.read_text().splitlines()

    def line_of(key: str) -> int:
        return next(k for k, s in enumerate(lines, 1) if s.strip().startswith(f"{key}:"))

    with pytest.raises(ConfigError) as err:
        kgrec.load_recipe(recipe)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"recipe.yaml:{line_of('behavor')}: mapping: unknown key 'behavor' (did you mean " \
           "'behavior'?)" in msg
    assert f"recipe.yaml:{line_of('ratingz')}: files: unknown role 'ratingz' (did you mean " \
           "'ratings'?)" in msg
    assert f"recipe.yaml:{line_of('colour')}: unknown field 'colour'" in msg


def test_recipe_reference_is_generated_and_in_the_readme():
    from kgrec.ingest.spec import FORMATS, reference

    text = reference()
    for fmt, spec in FORMATS.items():
        assert f"`format: {fmt}`" in text
        assert all(f"| `{k}` |" in text for k in (*spec.files, *spec.mapping))
        # every example is a valid recipe of its format
        kgrec.ingest.Recipe.from_dict(yaml.safe_load(spec.example))
    readme = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text()
    assert text.strip() in readme, ("docs/datasets.md's recipe reference is stale: paste "
                                    "`kgrec data recipe`")


def test_config_and_search_space_errors_name_the_line(tmp_path):
    from kgrec.tune import SearchSpace

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  name: lightgcn\ntrain:\n  epochs: 3\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:5: .*train\.lr: expected a number, got "
                                          r"'fast'"):
        kgrec.Config.load(cfg)
    cfg.write_text("train:\n  epochs: 3\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: .*unknown field\(s\) train\.lrr"):
        kgrec.Config.load(cfg)
    cfg.write_text("train:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: not valid YAML"):
        kgrec.Config.load(cfg)
    space = tmp_path / "s.yaml"
    space.write_text("train.lr: {float: [0.1, 0.01]}\nmodel.dimm: {int: [8, 64]}\n"
                     "model.layers: {choice: []}\n")
    with pytest.raises(ConfigError) as err:
        SearchSpace.load(space)
    msg = str(err.value)
    assert msg.startswith("3 bad entries")
    assert "s.yaml:1: train.lr: low 0.1 must be below high 0.01" in msg
    assert "s.yaml:2: unknown config field 'model.dimm' (did you mean 'model.dim'?)" in msg
    assert "s.yaml:3: model.layers: choice needs a non-empty list" in msg


def test_attribute_kinds_override_the_inference(tmp_path):
    """Occupation codes 0-20 used to reach the model as one standardised number."""
    from kgrec.features.build import AttributeSchema

    root = tmp_path / "a"
    root.mkdir()
    (root / "d.inter").write_text("user_id:token\titem_id:token\n1\ta\n2\tb\n3\ta\n4\tc\n")
    (root / "d.user").write_text("user_id:token\toccupation:token\tbio:token_seq\n"
                                 "1\t3\tplays oboe\n2\t17\t\n3\t3\treads\n4\t0\tsings\n")
    recipe = {"name": "kinds", "format": "recbole-atomic", "path": str(root),
              "files": {"inter": "d.inter", "user": "d.user"},
              "mapping": {"user_fields": {"occupation": "occupation", "bio": "bio"}}}
    g = kgrec.load_recipe(recipe, cache=False)
    inferred = AttributeSchema.fit(g.users, {"categorical", "numeric"})
    assert [n for n, *_ in inferred.numeric] == ["occupation"]
    g = kgrec.load_recipe({**recipe, "attributes": {"User": {"occupation": "category",
                                                              "bio": "text"}}}, cache=False)
    kinds = g.meta["attributes"]["User"]
    declared = AttributeSchema.fit(g.users, {"categorical", "numeric"}, kinds)
    assert declared.numeric == [] and declared.categorical == [("occupation",
                                                                ["", "0", "17", "3"])]
    from kgrec.features import node_texts

    assert node_texts(g)["User"] == ["bio: plays oboe", "", "bio: reads", "bio: sings"]
    with pytest.raises(ConfigError, match=r"attributes\.User\.age: User nodes have no attribute"):
        kgrec.load_recipe({**recipe, "attributes": {"User": {"age": "number"}}}, cache=False)
    with pytest.raises(ConfigError, match="unknown kind 'categorical'"):
        kgrec.load_recipe({**recipe, "attributes": {"User": {"bio": "categorical"}}},
                          cache=False)


def test_items_nobody_interacted_with_are_counted_and_can_be_dropped(tmp_path):
    root = tmp_path / "cat"
    recipe = write_kgcn(root, GOOD, kg="0\t0\t5\n4\t0\t5\n", item_ids="0\t0\n1\t1\n2\t2\n9\t3\n"
                        "8\t4\n")
    g = kgrec.load_recipe(recipe, cache=False)
    assert g.num_items == 5 and g.stats()["items_without_interactions"] == 2
    doc = yaml.safe_load(recipe.read_text())
    recipe.write_text(yaml.safe_dump({**doc, "drop_items_without_interactions": True}))
    dropped = kgrec.load_recipe(recipe, cache=False)
    assert dropped.items.ids.tolist() == ["0", "1", "2"]
    assert dropped.stats()["items_without_interactions"] == 0
    assert len(dropped.interactions) == len(g.interactions)
    assert len(dropped.knowledge()) == 1  # the triple of the dropped item went with it
