"""What a recipe may say: every top-level field, and per format every file role and mapping
key, with what it means and its default.

One declaration serves three purposes: :meth:`kgrec.ingest.Recipe.from_dict` refuses every
key it does not list (naming all of them, with the nearest known key), the readers may only
read keys it lists (:meth:`Recipe.opt` and :meth:`Recipe.file` check), and
:func:`reference` renders the reference that ``kgrec data recipe`` prints and docs/datasets.md
carries.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

ATTRIBUTE_KINDS = ("category", "number", "text", "vector", "ignore")


@dataclass(frozen=True)
class Key:
    """One recipe key: what it means, its default, whether it must be given."""

    doc: str
    default: str = ""
    required: bool = False


@dataclass(frozen=True)
class FormatSpec:
    """The file roles and mapping keys one reader understands, and an example recipe.

    ``free_files``: the roles are names the user chooses (DisenCDR's domains), each mapping
    to the sub-roles in ``files``.
    """

    name: str
    doc: str
    files: dict[str, Key]
    mapping: dict[str, Key]
    example: str
    free_files: bool = False


TOP_LEVEL: dict[str, Key] = {
    "name": Key("the dataset's name: the local store's key, and a dataset's identity in Neo4j",
                required=True),
    "format": Key("the reader: " + ", ".join(f"`{f}`" for f in (
        "kgcn", "recbole-atomic", "movielens-csv", "kgat", "disencdr", "rdf")), required=True),
    "path": Key("the dataset's folder, relative to the data directory (`$KGREC_DATA_DIR`) or "
                "absolute", required=True),
    "files": Key("role -> file under `path` (the roles of each format below)", required=True),
    "description": Key("free text, shown by `kgrec data list`"),
    "schema": Key("the graph schema, a name under `graph_schema/` or a YAML path",
                  default="recsys"),
    "mapping": Key("how the files' fields become the schema's (per format, below)"),
    "protocol": Key("evaluation defaults: `split: given` (the dataset's own train/test), "
                    "`ctr: true` (ships sampled negatives: the click-through protocol applies)"),
    "behavior_relations": Key("KG relations that users made (tags, co-purchases, reviews), not "
                              "facts: each split rebuilds them from its training interactions "
                              "(their edges must say who made them and when)"),
    "attributes": Key("how node attributes become model inputs, overriding the inference "
                      "(strings that all parse as numbers are numbers, other strings with "
                      "2-1000 values are categories): `{User: {occupation: category}}`; kinds: "
                      + ", ".join(f"`{k}`" for k in ATTRIBUTE_KINDS) + " (`text`: appended to "
                      "the node's text as `attribute: value`)"),
    "drop_items_without_interactions": Key(
        "drop catalogue items nobody interacted with (by default they are kept as items that "
        "are always cold; `kgrec data stats` counts them)", default="false"),
}

_COMMON = {"domain": Key("the `domain` of every item", default="default"),
           "behavior": Key("the `behavior` of every interaction", default="interact")}

FORMATS: dict[str, FormatSpec] = {f.name: f for f in [
    FormatSpec(
        "kgcn", "KGCN / RippleNet / MCCLK processed files: `user item label` rows (label 1 a "
        "positive, 0 a negative the preprocessing sampled, kept apart as SAMPLED_NEGATIVE) and "
        "`head relation tail` KG rows with items as entities `0..I-1`; `.txt` or `.npy`.",
        files={"ratings": Key("`ratings_final`: user item label", required=True),
               "kg": Key("`kg_final`: head relation tail"),
               "relation_names": Key("the raw `kg.txt`, row-aligned with `kg`, giving relation "
                                     "names"),
               "item_ids": Key("`item_index2entity_id`: raw item id, item index"),
               "item_names": Key("tab-separated file with a header: item names by raw id")},
        mapping={**_COMMON,
                 "item_text": Key("`str.format` template of an item's text over `{name}`, "
                                  "`{id}`", default="{name}"),
                 "item_names_id_column": Key("the raw-id column of `item_names`", default="id"),
                 "item_names_column": Key("the name column of `item_names`", default="name")},
        example="""name: my-lastfm
format: kgcn
path: lastfm-hetrec-kg
files:
  ratings: mcclk_processed/ratings_final.txt
  kg: mcclk_processed/kg_final.txt
  item_ids: kgcn_raw/item_index2entity_id.txt
  item_names: hetrec2011_text/artists.dat
mapping: {domain: music, behavior: listen, item_text: "{name}"}
protocol: {ctr: true}"""),
    FormatSpec(
        "recbole-atomic", "RecBole atomic files: tab-separated with `name:type` headers.",
        files={"inter": Key("`.inter`: interactions", required=True),
               "item": Key("`.item`: item rows (ids, text fields)"),
               "user": Key("`.user`: user rows (profiles)"),
               "kg": Key("`.kg`: head relation tail (with `user_id` and `timestamp` columns for "
                         "the triples of `behavior_relations`)"),
               "link": Key("`.link`: item id -> entity id (required with `kg`)")},
        mapping={**_COMMON,
                 "user_field": Key("the user id column", default="user_id"),
                 "item_field": Key("the item id column", default="item_id"),
                 "weight_field": Key("the interaction weight column (a rating)"),
                 "timestamp_field": Key("the interaction time column (seconds)"),
                 "item_name_field": Key("the `.item` column holding a display name"),
                 "item_text": Key("`str.format` template of an item's text over the `.item` "
                                  "columns"),
                 "item_fields": Key("`.item` column -> item attribute name (kept as strings)"),
                 "user_fields": Key("`.user` column -> attribute name, or `{name: N, type: "
                                    "int|string}`"),
                 "user_text": Key("`str.format` template of a user's text over the `.user` "
                                  "columns (a profile sentence)"),
                 "link_entity_field": Key("the entity column of `.link`", default="entity_id"),
                 "kg_head_field": Key("the head column of `.kg`", default="head_id"),
                 "kg_relation_field": Key("the relation column of `.kg`",
                                          default="relation_id"),
                 "kg_tail_field": Key("the tail column of `.kg`", default="tail_id"),
                 "kg_user_field": Key("the `.kg` column naming who made a user-made triple",
                                      default="user_id"),
                 "kg_timestamp_field": Key("the `.kg` column saying when",
                                           default="timestamp")},
        example="""name: my-ml-100k
format: recbole-atomic
path: ml-100k-kb4rec
files: {inter: ml-100k.inter, item: ml-100k.item, user: ml-100k.user, kg: ml-100k.kg,
        link: ml-100k.link}
mapping:
  domain: movie
  behavior: rate
  weight_field: rating
  timestamp_field: timestamp
  item_name_field: movie_title
  item_text: "{movie_title} ({release_year}). Genres: {class}"
  user_fields: {age: {name: age, type: int}, gender: gender, occupation: occupation}
attributes: {User: {occupation: category}}"""),
    FormatSpec(
        "movielens-csv", "MovieLens CSV releases; genres and (lower-cased) tags become a "
        "small KG (`HAS_GENRE`, facts; `HAS_TAG`, made by users: list it under "
        "`behavior_relations`).",
        files={"ratings": Key("`ratings.csv`: userId, movieId, rating, timestamp",
                              required=True),
               "movies": Key("`movies.csv`: movieId, title, genres", required=True),
               "tags": Key("`tags.csv`: userId, movieId, tag, timestamp")},
        mapping={"domain": Key("the `domain` of every item", default="movie"),
                 "behavior": Key("the `behavior` of every interaction", default="rate"),
                 "item_text": Key("`str.format` template over `{title}`, `{genres}`, `{id}`",
                                  default="{title}. Genres: {genres}"),
                 "no_genre": Key("the genre value that means none",
                                 default="(no genres listed)")},
        example="""name: my-movielens
format: movielens-csv
path: ml-latest-small
files: {ratings: ratings.csv, movies: movies.csv, tags: tags.csv}
behavior_relations: [HAS_TAG]
mapping: {domain: movie, behavior: rate}"""),
    FormatSpec(
        "kgat", "KGAT / KGIN text files: one line per user (`user item item ...`) in "
        "`train.txt` / `test.txt` (kept as the interactions' `fold`), optional `kg_final.txt` "
        "and `*_list.txt` id maps (`org_id remap_id`).",
        files={"train": Key("`train.txt`", required=True), "test": Key("`test.txt`"),
               "kg": Key("`kg_final.txt`: head relation tail"),
               "user_list": Key("`user_list.txt`"), "item_list": Key("`item_list.txt`"),
               "entity_list": Key("`entity_list.txt`"),
               "relation_list": Key("`relation_list.txt`")},
        mapping=dict(_COMMON),
        example="""name: my-amazon-book
format: kgat
path: kgat-amazon-book
files: {train: train.txt, test: test.txt, user_list: user_list.txt, item_list: item_list.txt}
mapping: {domain: book, behavior: buy}
protocol: {split: given}"""),
    FormatSpec(
        "disencdr", "DisenCDR cross-domain pairs: per domain, `train.txt` / `test.txt` rows "
        "`user item 1`; users shared, items become `<domain>:<item>`.",
        files={"train": Key("the domain's training rows", required=True),
               "test": Key("the domain's test rows")},
        mapping={"behavior": _COMMON["behavior"]}, free_files=True,
        example="""name: my-sport-cloth
format: disencdr
path: amazon-cdr-disencdr
files:
  sport: {train: sport_cloth/train.txt, test: sport_cloth/test.txt}
  cloth: {train: cloth_sport/train.txt, test: cloth_sport/test.txt}
mapping: {behavior: buy}
protocol: {split: given}"""),
    FormatSpec(
        "rdf", "An RDF knowledge graph (Turtle, N-Triples, RDF/XML, JSON-LD): IRIs of type "
        "`item_class` become items, other IRIs entities, labels their names, predicates "
        "between IRIs relations.",
        files={"kg": Key("the RDF file", required=True),
               "interactions": Key("tab-separated `user item [weight [timestamp]]`, items by "
                                   "IRI")},
        mapping={**_COMMON, "item_class": Key("the `rdf:type` IRI of items"),
                 "rdf_format": Key("rdflib's format name (default: from the extension)")},
        example="""name: my-bands
format: rdf
path: /data/bands
files: {kg: bands.ttl, interactions: plays.tsv}
mapping: {item_class: "http://example.org/Band"}"""),
]}


def nearest(key: str, known: list[str]) -> str:
    """``" (did you mean 'behavior'?)"`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keys(keys: list[str], known: list[str], where: str) -> list[str]:
    """One message per key of ``keys`` that ``known`` lacks."""
    return [f"{where}: unknown key {k!r}{nearest(str(k), known)}" for k in keys
            if k not in known]


@dataclass
class _Doc:
    lines: list[str] = field(default_factory=list)

    def table(self, keys: dict[str, Key]) -> None:
        self.lines += ["| key | required | default | meaning |", "|---|---|---|---|"]
        for k, v in keys.items():
            default = f"`{v.default}`" if v.default else ""
            self.lines.append(f"| `{k}` | {'yes' if v.required else ''} | {default} | "
                              f"{v.doc} |")
        self.lines.append("")


def reference(fmt: str | None = None) -> str:
    """The recipe reference as Markdown: the top-level fields, then per format (or only
    ``fmt``) its files, mapping keys and an example."""
    doc = _Doc()
    if fmt is None:
        doc.lines += ["Top-level fields:", ""]
        doc.table(TOP_LEVEL)
    for spec in FORMATS.values():
        if fmt is not None and spec.name != fmt:
            continue
        doc.lines += [f"**`format: {spec.name}`**: {spec.doc}", "",
                      "`files` (each domain maps to these):" if spec.free_files
                      else "`files`:", ""]
        doc.table(spec.files)
        doc.lines += ["`mapping`:", ""]
        doc.table(spec.mapping)
        doc.lines += ["```yaml", spec.example, "```", ""]
    return "\n".join(doc.lines)
