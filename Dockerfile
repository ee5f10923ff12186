# ifriend in a container: the wheel is built in one stage and installed in a slim one, run as
# a user without privileges. tests/adk/test_package.py runs these steps without Docker (the
# build stage's COPY and `pip wheel`, then the wheel installed into a fresh virtualenv).
#
#   docker build -t ifriend .                           # EXTRAS=redis,mysql,slack for a smaller image
#   docker run --rm -p 8080:8080 -v "$PWD/ifriend.toml:/app/ifriend.toml:ro" ifriend
#
# See docs/deploy.md (Cloud Run, Memorystore, Cloud SQL).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ifriend ./ifriend
COPY plugins ./plugins
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG EXTRAS=all
RUN useradd --create-home --uid 10001 ifriend
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir "$(ls /wheels/ifriend-*.whl)[${EXTRAS}]" && rm -rf /wheels
USER ifriend
# ifriend.toml is read from here (mount it, or COPY it in an image built FROM this one).
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PORT=8080
EXPOSE 8080
CMD ["ifriend", "run"]
