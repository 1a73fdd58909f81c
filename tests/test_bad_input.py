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
