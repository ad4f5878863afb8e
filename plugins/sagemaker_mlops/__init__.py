"""Airflow-side logic of the quality-gated SageMaker pipeline.

Plain functions and a few thin operator subclasses, importable and unit-testable without a
scheduler. The DAG files in ``dags/`` only wire these together.
"""
