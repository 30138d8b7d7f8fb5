# qudao's Airflow image: the official Airflow image plus the exact versions of
# requirements.lock and the qudao package. Built by docker-compose.yaml.
#   docker build -t qudao-airflow:3.3.2 .
# AIRFLOW_VERSION must equal the apache-airflow pin in requirements.lock (a unit test checks it).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

ARG AIRFLOW_VERSION
ENV QUDAO_PROJECT_DIR=/opt/qudao \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    DO_NOT_TRACK=1

USER root
RUN mkdir -p /opt/qudao /opt/airflow/config /opt/airflow/qudao-home \
    && chown -R airflow:0 /opt/qudao /opt/airflow/config /opt/airflow/qudao-home \
    && chmod -R g+rwX /opt/qudao /opt/airflow/config /opt/airflow/qudao-home
USER airflow

# Dependencies first (a layer that changes only with the lock). Keeping apache-airflow at the
# image's version stops pip from replacing the Airflow the image was built with.
COPY --chown=airflow:0 requirements.lock /opt/qudao/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/qudao/requirements.lock

# The project: package (editable, so the compose file's ./include mount takes effect),
# DAGs, dbt project, expectations. docker-compose.yaml mounts the same folders over these.
COPY --chown=airflow:0 pyproject.toml README.md /opt/qudao/
COPY --chown=airflow:0 include /opt/qudao/include
COPY --chown=airflow:0 dags /opt/qudao/dags
COPY --chown=airflow:0 dbt_project /opt/qudao/dbt_project
COPY --chown=airflow:0 expectations /opt/qudao/expectations
RUN pip install --no-cache-dir --no-deps -e /opt/qudao \
    && mkdir -p /opt/qudao/landing \
    && chmod -R g+rwX /opt/qudao

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/qudao/dags \
    QUDAO_LANDING=/opt/qudao/landing \
    QUDAO_HOME=/opt/airflow/qudao-home
WORKDIR /opt/airflow
