# The Airflow image of docker-compose.yaml: the official Airflow image, the runtime lock, and this project
# installed as a provider distribution (so the `leadboxer` and `pipedrive` connection types are
# registered and the ledger SQL ships inside the package).
#
#   docker build -t leadboxer-pipedrive-airflow .
#
# Keep the tag's Airflow version equal to the apache-airflow pin of requirements.txt, and its Python to the
# lock's (3.11); tests/packaging/test_docker_compose.py checks both.
FROM apache/airflow:3.3.2-python3.11

# The runtime lock. The image already holds Airflow and most of its dependencies: pip keeps whatever is
# installed at the lock's version and installs the rest (great-expectations, pandas, pyarrow...) at the
# lock's versions. Pinning apache-airflow to the image's own version ($AIRFLOW_VERSION, set by the base
# image) makes a lock that disagrees with the base image fail here instead of replacing Airflow.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# The package itself, built from the same files `pip install .` uses. The lock is a constraint here: it
# has everything already, so this installs leadboxer-pipedrive alone, and fails if its declared ranges
# no longer accept the lock. The [postgres] extra (psycopg2, for the ledger) is already in the image.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/src/leadboxer-pipedrive/
COPY --chown=airflow:0 include/sql /opt/airflow/src/leadboxer-pipedrive/include/sql
COPY --chown=airflow:0 plugins/leadboxer_pipedrive /opt/airflow/src/leadboxer-pipedrive/plugins/leadboxer_pipedrive
RUN pip install --no-cache-dir -c /opt/airflow/requirements.txt "/opt/airflow/src/leadboxer-pipedrive[postgres]" \
    && python -c "import importlib.metadata as md, leadboxer_pipedrive.sql as s; \
ep = next(e for e in md.entry_points(group='apache_airflow_provider') if e.value.startswith('leadboxer_pipedrive.')); \
assert ep.load()()['package-name'] == 'leadboxer-pipedrive'; \
assert (s.sql_dir() / 'ledger_schema.sql').is_file(), s.sql_dir(); print('provider and SQL at', s.sql_dir())"

# The DAGs, so the image runs without the development mounts of docker-compose.yaml; and the folder
# where tasks hand frames to each other (a volume shared by all workers in docker-compose.yaml).
COPY --chown=airflow:0 dags /opt/airflow/dags
RUN mkdir -p -m 775 /opt/airflow/staging
