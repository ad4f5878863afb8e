"""A local, offline SageMaker: one loopback HTTP endpoint for boto3 and the Airflow provider.

Start it with ``python -m local_sagemaker serve`` (``local_sagemaker.server.Emulator`` in
code); see local_sagemaker/README.md.
"""
