# The image every Airflow service of docker-compose.yaml and the emulator service run: Airflow
# 3.3.2 on Python 3.11 plus this project's pinned requirements, including the emulator's (the
# emulator runs include/training/ the way SageMaker's scikit-learn container would). dags/,
# plugins/, include/ and local_sagemaker/ are mounted by compose, so editing them needs no
# rebuild; only a requirements change does.
FROM apache/airflow:3.3.2-python3.11

# Pin apache-airflow so pip can never up- or downgrade the image's Airflow while resolving our
# requirements; constraints.txt is the resolved, `pip check`-clean lock of the whole set.
COPY --chown=airflow:0 requirements.txt requirements-emulator.txt constraints.txt /tmp/requirements/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/requirements/requirements.txt \
        -r /tmp/requirements/requirements-emulator.txt \
        -c /tmp/requirements/constraints.txt \
    && pip check

# The emulator runs jobs and model servers in SageMaker's image environments, never in this
# Python: build them here from their pinned, hash-checked lists (local_sagemaker/images/), and
# install bubblewrap for a literal /opt/ml per container (used when the service may create mount
# namespaces; see docs/compose.md).
USER root
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
USER airflow
ENV LOCAL_SAGEMAKER_IMAGES_DIR=/opt/airflow/.images
COPY --chown=airflow:0 local_sagemaker/__init__.py /opt/airflow/local_sagemaker/__init__.py
COPY --chown=airflow:0 local_sagemaker/images /opt/airflow/local_sagemaker/images
RUN cd /opt/airflow && python -m local_sagemaker.images build

# Mount points of the named volumes in docker-compose.yaml. A fresh named volume copies the
# owner and mode of its mount point, so making them group-0 writable here lets any AIRFLOW_UID
# (always in group 0) write to them without a root init step.
RUN mkdir -p /opt/airflow/secrets /opt/airflow/logs /opt/airflow/local-sagemaker \
    && chmod -R g+rwX /opt/airflow/secrets /opt/airflow/logs /opt/airflow/local-sagemaker
