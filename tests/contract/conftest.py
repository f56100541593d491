"""Fixtures for the Pipedrive contract tests.

pytest's default ("prepend") import mode puts this directory (it has no ``__init__.py``) on
``sys.path`` before importing this conftest, so ``import pipedrive_contract`` works both here and in
the test modules. The explicit insert below keeps that true under ``--import-mode=importlib`` too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pipedrive_contract  # noqa: E402


@pytest.fixture(scope="session")
def pipedrive_specs() -> pipedrive_contract.Specs:
    """Both Pipedrive OpenAPI documents (``tests/contract/openapi/``), parsed once."""
    return pipedrive_contract.load_specs()


@pytest.fixture(scope="session")
def contract(pipedrive_specs) -> object:
    """The ``pipedrive_contract`` module, with the documents already loaded."""
    return pipedrive_contract


@pytest.fixture
def contract_recorder(pipedrive_specs):
    """A fresh :class:`pipedrive_contract.ContractRecorder`; attach it to a ``requests.Session``."""
    return pipedrive_contract.ContractRecorder()
