import pytest

from kgrec.errors import SchemaError
from kgrec.schema import GraphSchema, sanitize_relation


def test_default_schema_loads_and_renders_constraints():
    schema = GraphSchema.load("recsys")
    assert set(schema.nodes) == {"User", "Item", "Entity"}
    assert schema.nodes["Item"].properties["domain"].required
    assert schema.edge_type_for_role("interaction") == ("User", "INTERACTED", "Item")
    cypher = schema.cypher_constraints()
    assert any("FOR (n:`Item`) REQUIRE (n.`dataset`, n.`id`) IS UNIQUE" in c for c in cypher)
    assert all("IF NOT EXISTS" in c for c in cypher)


def test_kg_relations_get_readable_safe_types():
    schema = GraphSchema.load("recsys")
    assert schema.relationship_type("Item", "music.artist.origin", "Entity") == \
        "MUSIC_ARTIST_ORIGIN"
    assert sanitize_relation("http://rdf.freebase.com/ns/type.object.type") == "TYPE_OBJECT_TYPE"
    assert sanitize_relation("x'}) DETACH DELETE n //") == "X_DETACH_DELETE_N"
    assert sanitize_relation("3d.model") == "R_3D_MODEL"
    with pytest.raises(SchemaError, match="no relationship type"):
        schema.relationship_type("User", "likes", "Entity")


@pytest.mark.parametrize("doc,match", [
    ({"name": "s", "nodes": {"Bad Label": {"key": "id", "properties": {"id": {
        "type": "string", "required": True}}}}}, "not an identifier"),
    ({"name": "s", "nodes": {"A": {"key": "id", "properties": {"id": "string"}}}},
     "must be a required string"),
    ({"name": "s", "nodes": {"A": {"key": "id", "properties": {"id": {"type": "blob",
                                                                      "required": True}}}}},
     "needs type"),
    ({"name": "s", "nodes": {"A": {"key": "id", "properties": {"id": {
        "type": "string", "required": True}}}},
      "relationships": {"R": {"role": "interaction", "from": "A", "to": "Nope"}}},
     "unknown label 'Nope'"),
    ({"name": "s", "nodes": {}, "extra": 1}, "unknown top-level"),
])
def test_invalid_schemas_are_rejected_with_the_reason(doc, match):
    with pytest.raises(SchemaError, match=match):
        GraphSchema.from_dict(doc)


def test_graph_violating_schema_is_rejected(lastfm):
    from kgrec.graph import EdgeTable, RecGraph

    schema = GraphSchema.load("recsys")
    bad = RecGraph(dict(lastfm.nodes), dict(lastfm.edges), "bad")
    inter = lastfm.interactions
    attrs = dict(inter.attrs)
    attrs["weight"] = attrs["weight"].copy()
    attrs["weight"][7] = float("nan")
    bad.edges[("User", "INTERACTED", "Item")] = EdgeTable(inter.src, inter.dst, attrs)
    with pytest.raises(SchemaError, match="'weight' is NaN in row 7"):
        bad.validate(schema)
