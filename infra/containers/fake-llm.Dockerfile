# The fake OpenAI-compatible LLM (tools/roadmap-dev) in a container: OpenAI's
# stand-in on the network of the container tests (infra/containers/tests). Not
# deployed. Build with the repository root as context; REQUIREMENTS pins the
# fake's own dependencies to the versions the workspace resolved, e.g.
#   docker build -f infra/containers/fake-llm.Dockerfile \
#     --build-arg REQUIREMENTS="fastapi==0.163.0 uvicorn==0.54.0 ..." .
ARG PYTHON_IMAGE=python:3.11-slim-trixie
FROM ${PYTHON_IMAGE}
ARG REQUIREMENTS="fastapi uvicorn pydantic httpx psutil"
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ${REQUIREMENTS}
COPY tools/roadmap-dev/src/roadmap_dev /opt/fake-llm/roadmap_dev
ENV PYTHONPATH=/opt/fake-llm \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8765
CMD ["python", "-m", "roadmap_dev.fake_llm", "--host", "0.0.0.0", "--port", "8765"]
