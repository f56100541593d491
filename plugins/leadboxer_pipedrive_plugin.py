"""The package's Airflow plugin (``leadboxer_pipedrive.plugin``) for an Airflow that reads this plugins folder
without the package installed. Installed, the distribution's ``airflow.plugins`` entry point registers it,
and this module holds no plugin, so Airflow never registers it twice."""

from importlib.metadata import entry_points

ENTRY_POINT = "leadboxer_pipedrive.plugin:LeadBoxerPipedrivePlugin"

if not any(point.value == ENTRY_POINT for point in entry_points(group="airflow.plugins")):
    from leadboxer_pipedrive.plugin import LeadBoxerPipedrivePlugin  # noqa: F401 - found here by Airflow's scan
