"""LeadBoxer → Pipedrive sync for Apache Airflow: hooks, operators and pure transforms.

Layout: ``hooks/`` talk HTTP and SQL, ``frames``/``validation``/``transforms`` are pure functions on
pandas frames (no Airflow imports), ``loading`` resolves Pipedrive ids through the hooks and the ledger,
and ``operators/`` wire them into Airflow tasks.
"""

__version__ = "0.1.0"
