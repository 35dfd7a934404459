-- Prefect's own database beside the catalog; the catalog's schema is created by sohoa's migrations.
CREATE DATABASE prefect;
