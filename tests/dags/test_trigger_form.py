"""The trigger form of every sync DAG, as Airflow's UI builds it from each Param's JSON schema: every field
has a title and a description, ids are integer fields (a schema with two types besides null renders as a
six-row text area), and the defaults validate."""

from __future__ import annotations

import pytest

SYNC_DAGS = ["leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads",
             "leadboxer_pipedrive__sandbox_activities", "leadboxer_pipedrive__sandbox_leads"]
INTEGER_FIELDS = {"segment_id": "integer", "max_leads": ["null", "integer"], "pipeline_id": ["null", "integer"],
                  "owner_id": ["null", "integer"]}


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_every_field_has_a_title_a_description_and_one_type(airflow_db, dagbag, dag_id):
    params = dagbag.get_dag(dag_id).params
    assert {"dataset_id", "segment_id", "dry_run", "max_leads"} <= set(params)
    for name in params:
        param = params.get_param(name)
        schema = param.schema
        assert schema.get("title") and param.description, (name, schema)
        kinds = schema.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        assert len([kind for kind in kinds if kind != "null"]) <= 1, (name, schema)  # never a text area
        if name in INTEGER_FIELDS:
            assert schema["type"] == INTEGER_FIELDS[name], (name, schema)
    params.validate()  # the defaults are valid values of their own fields
